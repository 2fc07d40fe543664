"""The benches' cycle contract (mintaccel/verify/benches/contract.py) agrees with the cycle-accurate
simulator's constants (sim/cycle/controller.py): both come from docs/microarchitecture.md."""

from __future__ import annotations

from mintaccel.verify import harness  # noqa: F401  (puts mintaccel/verify/benches on sys.path)

import contract


def test_contract_matches_the_simulator():
    from mintaccel.sim.cycle import controller as sim
    pairs = {
        "RUN_START": "RUN_START", "RUN_DONE": "RUN_DONE", "SETUP": "SETUP", "ENCODE_PER_WORD": "ENCODE_PER_WORD",
        "ENCODE_PER_EVENT": "ENCODE_PER_EVENT", "ENCODE_START": "ENCODE_START", "ENCODE_DONE": "ENCODE_DONE", "GROUP_START": "GROUP_START",
        "ACC_PER_EVENT": "ACC_PER_EVENT", "ACC_DRAIN": "GROUP_DRAIN", "FIRST_GROUP_DRAIN": "FIRST_GROUP_DRAIN", "FIRE": "GROUP_FIRE", "DRAIN": "LAYER_DRAIN",
        "OUTPUT_PER_WORD": "OUTPUT_PER_WORD",
    }
    mine = {k: getattr(contract, k) for k in pairs}
    theirs = {k: getattr(sim, v, None) for k, v in pairs.items()}
    assert mine == theirs, "mintaccel/verify/benches/contract.py and sim/cycle/controller.py disagree"
