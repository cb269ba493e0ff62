"""Every verb has --help, and the lazy verb table matches what the verb modules register."""

import importlib

import pytest

from vid2reward.agent.cli import VERBS, build_parser, main


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([verb, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: vid2reward {verb}" in out and "-h, --help" in out


def test_each_module_registers_exactly_its_verbs():
    for module_name in {m for m, _ in VERBS.values()}:
        parser = build_parser(None)
        sub = next(a for a in parser._subparsers._group_actions)  # the VERB subparsers
        fresh = type(sub)(option_strings=[], prog="x", parser_class=type(parser))
        importlib.import_module(f"vid2reward.agent.commands.{module_name}").register(fresh)
        assert set(fresh.choices) == {v for v, (m, _) in VERBS.items() if m == module_name}


def test_top_level_help_lists_every_verb(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in VERBS:
        assert verb in out


def test_error_text_is_printed_verbatim_not_as_markup(tmp_path, capsys):
    code = main(["render", "--policy", str(tmp_path), "--out", str(tmp_path / "c.mp4"),
                 "--size", "[bold]x"])
    err = capsys.readouterr().err
    assert code == 2 and "bad frame size '[bold]x'" in err


def test_demo_help_says_how_long_it_really_takes(capsys):
    """It said "in a few minutes"; it takes 7.5 idle and 19-25 on a busy 2-core machine."""
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "few minutes" not in out
    assert "about 8 minutes on an idle 2-core laptop" in out and "20-25 on a busy one" in out
