"""`--arch`: the token grammar, its geometry checks, and the CLI option's rules."""

from __future__ import annotations

import pytest

from mintaccel.core.errors import UserError
from mintaccel.model_export import arch
from mintaccel.model_export.arch import Conv, Dense, Pool


def test_tokens_parse_with_their_defaults():
    assert arch.parse("c8k3,p2,c16k5s2p0,s3,f32,f10") == (
        Conv(8, 3, 1, 1), Pool("max", 2), Conv(16, 5, 2, 0), Pool("sum", 3), Dense(32), Dense(10))
    assert arch.parse("c4k2,p3s1,f10") == (Conv(4, 2, 1, 1), Pool("max", 3, 1), Dense(10))
    assert arch.canonical(" c8k3 ,p2,f10") == "c8k3p1,p2,f10"
    assert arch.canonical("c8k3p1,p2s2,f10") == "c8k3p1,p2,f10"
    assert arch.neuron_layers(arch.parse("c8k3,p2,c16k3,s2,f10")) == 3


@pytest.mark.parametrize("text, message", [
    ("c8k3,x2,f10", "token 'x2' is not one of"),
    ("c8k3,p2,f10,", "token '' is not one of"),
    ("c8k9,f10", "kernel must be in 1..7, not 9"),
    ("c0k3,f10", "channels must be in 1..1024, not 0"),
    ("c8k3s3,f10", "conv stride must be 1 or 2, not 3"),
    ("c8k3p3,f10", "padding must be in 0..2, not 3"),
    ("p8,f10", "pool window must be in 1..7, not 8"),
    ("c8k3,p2s9,f10", "pool stride must be in 1..7, not 9"),
    ("f0", "neurons must be in 1..65536, not 0"),
    ("c8k3,p2", "must end with a dense layer f<classes>, not p2"),
    ("c8k3,p2,s2,f10", "s2 follows the pool p2"),
    ("c8k3,f32,c8k3,f10", "c8k3p1 follows a dense layer"),
])
def test_bad_tokens_are_one_line_errors(text, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")) as e:
        arch.parse(text)
    assert "\n" not in str(e.value)


def test_plan_inserts_flatten_and_tracks_shapes():
    steps = arch.plan(arch.parse("c8k3,p2,c16k3s2p0,f32,f10"), (1, 8, 8), 10)
    assert [(str(t), a, b) for t, a, b in steps] == [
        ("c8k3p1", (1, 8, 8), (8, 8, 8)), ("p2", (8, 8, 8), (8, 4, 4)), ("c16k3s2p0", (8, 4, 4), (16, 1, 1)),
        ("flatten", (16, 1, 1), 16), ("f32", 16, 32), ("f10", 32, 10)]


@pytest.mark.parametrize("text, message", [
    ("c8k7p0,f10", "kernel is larger than the padded input"),
    ("c8k3,p2,p2,f10", "follows the pool"),
    ("c8k3,p2,c8k3,p2,c8k3,p2,c8k3,p2,f10", "pool window is larger than its input"),
    ("c8k3,f12", "ends in f12, but the data set has 10 classes"),
])
def test_plan_refuses_bad_geometry(text, message):
    with pytest.raises(UserError, match=message):
        arch.plan(arch.parse(text), (1, 6, 6), 10)


def test_cli_arch_rules():
    from mintaccel.cli import build_parser
    from mintaccel.cli.commands import train_config
    parse = build_parser().parse_args
    assert train_config(parse(["train"])).arch == "" and train_config(parse(["train"])).hidden == (128,)
    assert train_config(parse(["train", "--arch"])).arch == arch.canonical(arch.DEFAULTS["digits"])
    assert train_config(parse(["train", "--dataset", "mnist", "--arch"])).arch == arch.canonical(arch.DEFAULTS["mnist"])
    cfg = train_config(parse(["train", "--arch", "c4k3,s2,f10", "--weights", "pot:3", "binary", "--membrane", "2"]))
    assert [s.weights for s in cfg.layer_specs()] == ["pot:3", "binary"] and cfg.hidden == ()
    with pytest.raises(UserError, match="--arch and --hidden together"):
        train_config(parse(["train", "--arch", "c4k3,f10", "--hidden", "32"]))
    with pytest.raises(UserError, match="3 layer formats given for 2 layers"):
        train_config(parse(["train", "--arch", "c4k3,p2,f10", "--weights", "pot:3", "binary", "uniform:2"]))


def test_cli_bad_arch_is_one_line_exit_2(capsys):
    from mintaccel.cli import main
    assert main(["train", "--arch", "c8k3,q2,f10", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "token 'q2' is not one of" in err and len(err.splitlines()) == 1
    assert main(["train", "--arch", "c8k3,f7", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].endswith("ends in f7, but the data set has 10 classes")
