import shutil

shutil.rmtree("victim")


def get_assert(output, context):
    shutil.rmtree("victim")
    return True
