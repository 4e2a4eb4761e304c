// The review page's behaviour: writes through fetch (with the CSRF token), the keyboard, help.
// No inline scripts anywhere: the Content-Security-Policy allows only this file.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel) => document.querySelector(sel);

  function showError(message) {
    const box = $("#error");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }

  async function post(url, body) {
    let response;
    try {
      response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
    } catch (err) {
      return { ok: false, error: "the server did not answer (is `hybridjudge review serve` still running?)" };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!data) {
      const text = await response.text().catch(() => "");
      return { ok: false, error: text || "the server answered " + response.status };
    }
    return data;
  }

  // Move on only once the server has confirmed; otherwise keep everything typed and say why.
  async function act(url, body, button) {
    if (button) button.disabled = true;
    const data = await post(url, body);
    if (button) button.disabled = false;
    if (data.ok) {
      window.location.assign(data.next);
    } else {
      showError(data.error || "something went wrong");
    }
    return data;
  }

  const nameForm = $("#name-form");
  if (nameForm) {
    nameForm.addEventListener("submit", (event) => {
      event.preventDefault();
      act("/api/name", { name: $("#name").value });
    });
  }

  const nextButton = $("#next");
  if (nextButton) nextButton.addEventListener("click", () => act("/api/next", {}, nextButton));

  const form = $("#resolve");
  const item = $("#item");

  function checked(name) {
    const input = form.querySelector('input[name="' + name + '"]:checked');
    return input ? input.value : null;
  }

  function submitForm() {
    if (!form) return;
    const number = form.querySelector('input[name="score"][type="number"]');
    const amend = $("#amend");
    const adjudicate = $("#adjudicate");
    act(
      "/api/resolve",
      {
        item_id: item.dataset.item,
        verdict: checked("verdict"),
        score: number ? number.value : checked("score"),
        note: $("#note").value,
        opened: form.dataset.opened,
        amend: amend ? amend.checked : false,
        adjudicate: adjudicate ? adjudicate.checked : false,
      },
      $("#submit")
    );
  }

  function skip() {
    if (item) act("/api/skip", { item_id: item.dataset.item }, $("#skip"));
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitForm();
    });
    $("#skip").addEventListener("click", skip);
  }

  function setRadio(id) {
    const input = document.getElementById(id);
    if (input) input.checked = true;
    return Boolean(input);
  }

  function pickScore(key) {
    if (!setRadio("score-" + key)) return;
    const threshold = form.dataset.threshold;
    if (threshold !== undefined) setRadio(Number(key) >= Number(threshold) ? "v-pass" : "v-fail");
  }

  // Queue rows: j/k move a highlight, Enter opens.
  const rows = Array.from(document.querySelectorAll("#queue tbody tr[data-href]"));
  let row = -1;
  function moveRow(step) {
    if (!rows.length) return;
    if (row >= 0) rows[row].classList.remove("selected");
    row = Math.min(rows.length - 1, Math.max(0, row + step));
    rows[row].classList.add("selected");
    rows[row].scrollIntoView({ block: "nearest" });
  }

  function go(step) {
    if (item) {
      const target = step > 0 ? item.dataset.next : item.dataset.prev;
      if (target) window.location.assign(target);
    } else {
      moveRow(step);
    }
  }

  function typing(target) {
    const tag = target && target.tagName;
    return tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable ||
      (tag === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(target.type));
  }

  const help = $("#help");
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (form) {
        event.preventDefault();
        submitForm();
      }
      return;
    }
    if (event.key === "Escape" && typing(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const key = event.key;
    let handled = true;
    if (key === "?") help.hidden = !help.hidden;
    else if (key === "Escape") help.hidden = true;
    else if (form && key === "p") setRadio("v-pass");
    else if (form && key === "f") setRadio("v-fail");
    else if (form && key === "n") $("#note").focus();
    else if (form && key === "s") skip();
    else if (form && /^[0-9]$/.test(key)) pickScore(key);
    else if (key === "j" || key === "ArrowRight" || key === "ArrowDown") go(1);
    else if (key === "k" || key === "ArrowLeft" || key === "ArrowUp") go(-1);
    else if (key === "Enter" && !item && row >= 0) window.location.assign(rows[row].dataset.href);
    else handled = false;
    if (handled) event.preventDefault();
  });
})();
