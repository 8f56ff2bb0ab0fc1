"""The CLI lists its subcommands without importing them, and imports only what a command runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from clgate.audit.cli import SUBCOMMANDS

HEAVY = ("torch", "transformers", "inspect_ai", "streamlit", "sqlalchemy", "numpy", "presidio_analyzer")


@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_the_listed_summary_is_the_commands_own_help(name: str) -> None:
    """`clgate --help` shows the table's summary; the command's own help must say the same."""
    command = SUBCOMMANDS[name].load(name)
    assert (command.help or "").strip().split("\n\n")[0].replace("\n", " ") == SUBCOMMANDS[name].summary


def test_only_clgate_itself_offers_shell_completion(capsys) -> None:
    """Every single-command subcommand listed `--install-completion` in its help, which installs nothing of
    its own: completion is `clgate --install-completion`."""
    from clgate.audit.cli import main

    for args in (["status", "--help"], ["policy", "--help"], ["ledger", "verify", "--help"]):
        assert main(args) == 0
        assert "--install-completion" not in capsys.readouterr().out, args
    assert main(["--help"]) == 0
    assert "--install-completion" in capsys.readouterr().out


def _imported_after(*args: str, watched: tuple[str, ...] = HEAVY) -> set[str]:
    """Which of the `watched` modules `clgate ARGS` imported."""
    code = "import sys\nfrom clgate.audit.cli import main\nmain(list(sys.argv[1:]))\n"  # main exits: the modules are listed by an atexit hook
    hook = f"import atexit, sys; atexit.register(lambda: print('imported:', *(m for m in {watched!r} if m in sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", hook + code, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("imported:")]
    return set(line.split()[1:])


@pytest.mark.parametrize(
    "args", [("--help",), ("ledger", "verify", "--help"), ("gate", "--help"), ("version",)]
)
def test_a_command_imports_no_model_library_it_does_not_run(args: tuple[str, ...]) -> None:
    assert _imported_after(*args) == set()


# start-up (benchmarks/cli_startup.py): help is plain click text, and a ledger command's help loads
# none of the modules only its commands run
LEDGER_RUN = ("rich", "clgate.ledger.log", "clgate.ledger.export", "clgate.ledger.attestations")


@pytest.mark.parametrize("args", [("--help",), ("ledger", "verify", "--help"), ("keys", "add", "--help")])
def test_help_loads_neither_rich_nor_what_the_commands_run(args: tuple[str, ...]) -> None:
    assert _imported_after(*args, watched=LEDGER_RUN) == set()
