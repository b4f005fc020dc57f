"""The formiga binary's shell: help, version, unknown commands."""


def test_version(run_formiga):
    out = run_formiga("--version").stdout
    assert out.strip()[0].isdigit()


def test_help_lists_commands(run_formiga):
    out = run_formiga("--help").stdout
    for cmd in ("info", "tokenize", "quantize", "synth"):
        assert cmd in out


def test_unknown_command_fails_clearly(run_formiga):
    proc = run_formiga("frobnicate", check=False)
    assert proc.returncode != 0
    assert "frobnicate" in (proc.stderr + proc.stdout)
