"""Runs `cce-bench` commands one after another in one warm process (the package imported once), for the
many tests whose command stops early: a JSON line in (args, env) -> a JSON line out (exit code, stderr).
A module imported by one request stays imported: a request that needs its own module names a new one.
An exception that escapes the CLI is reported as Python would report it: exit code 1 and its traceback."""
import contextlib
import io
import json
import os
import sys
import traceback

from cce_bench.cli import main


def run(args: list[str], env: dict) -> dict:
    saved_env, saved_argv, saved_path = dict(os.environ), list(sys.argv), list(sys.path)
    os.environ.update(env)
    # a PYTHONPATH of the request is on sys.path, as it would be in a new process
    sys.path[:0] = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what a real process would print before dying
            traceback.print_exc(file=err)
            code = 1
    os.environ.clear()
    os.environ.update(saved_env)
    sys.argv = saved_argv
    sys.path[:] = saved_path
    return {"returncode": code, "stderr": err.getvalue()}


if __name__ == "__main__":
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(run(request["args"], request.get("env", {}))), flush=True)
