#!/usr/bin/env python3
"""Runs Luna2's own clients against a test server, with their hard-coded
paths moved into a scratch directory.

    luna_cli.py luna   --home DIR --endpoint HOST:PORT --username U --password P --secret-key K -- ARGS...
    luna_cli.py lpower --home DIR --endpoint HOST:PORT --username U --password P --secret-key K -- ARGS...

`luna` is luna2-cli (../shared/reference/clients/luna2-cli, its `luna.cli`
run from source); `lpower` is luna2-utils' `utils/lpower.py`. Neither is
copied or changed: this wrapper writes the INI file they read into DIR,
points the paths they hard-code (/trinity/local/luna/..., /var/log/luna)
there before their modules run, and then runs their own entry points, so
the real client code talks to the server. The process exits as the client
does (its exit code, its stdout and stderr).

The clients' directory is $SLIPWAY_LUNA_CLIENTS, else
<worktree>/../shared/reference/clients.
"""

import argparse
import configparser
import os
import runpy
import sys
import types
from pathlib import Path


def clients_dir() -> Path:
    env = os.environ.get("SLIPWAY_LUNA_CLIENTS")
    if env:
        return Path(env)
    # tests/luna2/luna_cli.py -> the worktree -> ../shared
    root = Path(__file__).absolute().parent.parent.parent
    return root.parent / "shared" / "reference" / "clients"


def write_ini(path: Path, args) -> None:
    ini = configparser.RawConfigParser()
    ini.optionxform = str  # the clients read upper-case option names
    ini["API"] = {
        "USERNAME": args.username,
        "PASSWORD": args.password,
        "SECRET_KEY": args.secret_key,
        "PROTOCOL": args.protocol,
        "ENDPOINT": args.endpoint,
        "VERIFY_CERTIFICATE": "no",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        ini.write(f)


def run_luna(home: Path, argv) -> None:
    src = clients_dir() / "luna2-cli"
    sys.path.insert(0, str(src))
    # The package's __init__ installs the CLI on the machine (creates
    # /trinity/... and /var/log/luna, copies an INI there) when those paths
    # are missing; it holds nothing else. Register the package without
    # running it; its submodules load from its folder as usual.
    pkg = types.ModuleType("luna")
    pkg.__path__ = [str(src / "luna")]
    sys.modules["luna"] = pkg
    import luna.utils.constant as constant  # noqa: E402

    constant.INI_FILE = str(home / "cli" / "luna.ini")
    constant.TOKEN_FILE = str(home / "cli" / "token.txt")
    constant.LOG_DIR = str(home / "log")
    constant.LOG_FILE = str(home / "log" / "luna2-cli.log")
    (home / "log").mkdir(parents=True, exist_ok=True)
    import luna.cli  # noqa: E402  (binds the constants patched above)

    # get_version reads VERSION.txt beside the package when argv[0] does not
    # name `luna`; call_class then renames argv[0] to `luna` itself.
    sys.argv = ["client-under-test"] + list(argv)
    luna.cli.run_tool()


def run_lpower(home: Path, argv) -> None:
    src = clients_dir() / "luna2-utils"
    sys.path.insert(0, str(src))
    from utils.utils.ini import Ini  # noqa: E402
    from utils.utils.log import Log  # noqa: E402

    ini_file = str(home / "utils" / "luna.ini")
    log_file = str(home / "log" / "lpower.log")
    read_ini, init_log = Ini.read_ini.__func__, Log.init_log.__func__
    # lpower reads its INI and opens its log at import, with fixed paths.
    Ini.read_ini = classmethod(lambda cls, ini_file=None: read_ini(cls, ini_file=ini_file_moved))
    Log.init_log = classmethod(
        lambda cls, log_file=None, log_level=None, log_name=None: init_log(
            cls, log_file=log_file_moved, log_level=log_level, log_name=log_name
        )
    )
    ini_file_moved, log_file_moved = ini_file, log_file
    sys.argv = ["lpower"] + list(argv)
    runpy.run_path(str(src / "utils" / "lpower.py"), run_name="__main__")


def main() -> None:
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    p = argparse.ArgumentParser()
    p.add_argument("tool", choices=["luna", "lpower"])
    p.add_argument("--home", required=True, type=Path)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--protocol", default="http")
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--secret-key", required=True)
    args = p.parse_args(argv)
    home = args.home.absolute()
    if args.tool == "luna":
        write_ini(home / "cli" / "luna.ini", args)
        run_luna(home, rest)
    else:
        write_ini(home / "utils" / "luna.ini", args)
        run_lpower(home, rest)


if __name__ == "__main__":
    main()
