"""The hostile-input suite: every probe of the data-safety round (issue 16), by its test.

`pytest -m hostile` runs them all; `tests/test_hostile_suite.py` checks that each one named here
is a collected test (a renamed test cannot drop out of the suite silently) and runs the suite in a
child process whose time and address space are capped, so a probe that regresses into unbounded
memory or a hang fails instead of taking the machine down.
"""

from __future__ import annotations

PROBES: dict[str, tuple[str, ...]] = {
    "prune deletes only runs": (
        "tests/test_runs_folder.py::test_prune_in_the_project_folder_removes_no_folder_that_is_not_a_run",
        "tests/test_runs_folder.py::test_prune_leaves_a_linked_run_folder_alone_without_a_traceback",
    ),
    "prune keeps running, pending and needed runs": (
        "tests/test_runs_folder.py::test_prune_never_removes_a_run_being_written_even_with_force",
        "tests/test_runs_folder.py::test_prune_keeps_runs_with_pending_items_unless_forced",
        "tests/test_runs_folder.py::test_prune_keeps_the_only_judge_verdicts_behind_reviewers_decisions",
    ),
    "migrate stays inside the project": (
        "tests/test_runs_folder.py::test_migrate_and_the_pre_run_check_never_reach_outside_the_project",
        "tests/test_runs_folder.py::test_migrate_moves_files_across_filesystems",
    ),
    "a full disk loses no record": (
        "tests/test_e2e_runs.py::test_a_full_disk_mid_run_leaves_every_record_whole_and_says_what_to_free",
    ),
    "python: verifiers name project functions only": (
        "tests/test_verifiers.py::test_python_function_imported_into_a_project_module_is_not_run",
        "tests/test_e2e_user_code.py::test_gold_file_cannot_name_a_function_a_project_module_imports",
    ),
    "SystemExit cannot hang the run": (
        "tests/test_e2e_user_code.py::test_verifier_calling_argparse_fails_its_case_only",
        "tests/test_e2e_user_code.py::test_python_verifier_naming_an_ordinary_setup_py",
        "tests/test_e2e_user_code.py::test_app_target_calling_sys_exit_fails_its_case",
        "tests/test_e2e_user_code.py::test_plugin_verifier_and_provider_calling_sys_exit",
        "tests/test_e2e_user_code.py::test_scheduler_survives_a_job_raising_system_exit",
    ),
    "credentials in a base URL are redacted": (
        "tests/test_calls.py::test_redact_removes_url_credentials_and_basic_auth",
        "tests/test_e2e_interop.py::test_credentials_in_a_base_url_never_reach_files_or_the_terminal",
    ),
    "CSV formula injection": (
        "tests/test_e2e_hostile.py::test_csv_export_neutralises_formulas_and_escapes_control_characters",
        "tests/test_e2e_hostile.py::test_jsonl_exports_keep_control_characters_off_the_terminal",
    ),
    "Markdown injection": (
        "tests/test_e2e_hostile.py::test_ci_summary_shows_hostile_ids_and_names_as_text",
        "tests/test_e2e_hostile.py::test_ci_summary_renders_no_image_link_or_html",
    ),
    "alias bombs by size and by count": (
        "tests/test_hostile_files.py::test_yaml_alias_bomb_is_refused_with_bounded_memory",
        "tests/test_hostile_files.py::test_yaml_alias_bomb_by_size_is_refused_at_its_line_with_bounded_memory",
        "tests/test_hostile_files.py::test_nested_aliases_of_a_long_string_are_refused_in_a_memory_capped_process",
        "tests/test_hostile_files.py::test_yaml_alias_into_itself_is_refused",
        "tests/test_e2e_hostile.py::test_hostile_gold_files_are_one_line_collection_errors",
    ),
    "format widths are bounded": (
        "tests/test_sandbox.py::test_one_step_that_would_build_a_huge_value_is_refused",
        "tests/test_sandbox.py::test_many_format_fields_stop_at_the_size_bound",
        "tests/test_e2e_hostile.py::test_unbounded_rubric_is_a_collection_error_naming_rubric_and_bound",
    ),
    "baseline files are validated and bounded": (
        "tests/test_gate.py::test_a_baseline_field_of_the_wrong_type_names_its_line",
        "tests/test_gate.py::test_a_baseline_line_is_read_with_a_bound",
        "tests/test_e2e_gate.py::test_a_baseline_field_of_the_wrong_type_stops_before_any_call",
    ),
    "--judge-baseline PATH never switches projects": (
        "tests/test_e2e_gate.py::test_baseline_path_after_a_space_never_switches_to_another_project",
    ),
    "a cache in the project root hides no gold case": (
        "tests/test_e2e_runs.py::test_a_cache_in_the_project_root_hides_no_gold_case",
        "tests/test_e2e_runs.py::test_the_tools_own_files_in_a_gold_folder_are_not_cases",
    ),
    "~ in configured paths": (
        "tests/test_e2e_runs.py::test_home_in_configured_paths_means_the_home_folder_for_plugin_and_cli",
    ),
    "errors, not tracebacks": (
        "tests/test_e2e_runs.py::test_a_step_summary_that_is_a_folder_stops_the_run_before_any_call",
        "tests/test_e2e_runs.py::test_a_damaged_cache_with_a_valid_header_is_named_before_any_call",
        "tests/test_hostile_files.py::test_tags_that_cannot_be_markers_are_refused_with_the_fix",
        "tests/test_e2e_hostile.py::test_tags_pytest_cannot_take_are_collection_errors_not_tracebacks",
    ),
    "errors point where the mistake is": (
        "tests/test_hostile_files.py::test_an_unclosed_quote_is_reported_where_it_opens",
        "tests/test_hostile_files.py::test_an_unclosed_bracket_is_reported_where_it_opens",
        "tests/test_hostile_files.py::test_the_undefined_variable_hint_works_as_suggested",
        "tests/test_e2e_hostile.py::test_a_bad_flag_value_is_blamed_on_the_flag_not_the_file",
        "tests/test_e2e_hostile.py::test_a_misspelled_table_is_named_with_the_right_spelling",
        "tests/test_e2e_hostile.py::test_a_configured_rubrics_folder_that_is_missing_is_named",
        "tests/test_e2e_hostile.py::test_unknown_keys_get_a_did_you_mean",
    ),
    "docs stay true": ("tests/test_docs_checks.py",),
}


def probe_ids() -> set[str]:
    """Every node id (without parameters) or test file the suite names."""
    return {probe for probes in PROBES.values() for probe in probes}
