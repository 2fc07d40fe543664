"""`mintaccel generate`: Verilog, memory images and a manifest for a model and/or a hardware config."""

from __future__ import annotations

import os

from mintaccel.cli import integer, output_option, report
from mintaccel.core.files import read_json_object
from mintaccel.core.errors import UserError


def hardware_config(path: str | None, model, n_pe: int | None):
    """A HwConfig from a JSON file of HwConfig fields, or the smallest build that runs `model`."""
    from mintaccel.core.hwconfig import HwConfig
    if path:
        fields = read_json_object(path, f"hardware config {path}")
        unknown = set(fields) - {f for f in HwConfig.__dataclass_fields__}
        if unknown:
            raise UserError(f"{path}: unknown hardware config fields {sorted(unknown)}")
        if n_pe is not None:
            fields["n_pe"] = n_pe
        try:
            return HwConfig(**fields)
        except UserError as e:  # HwConfig checks types and ranges; say which file
            raise UserError(f"{path}: {e}") from None
    if model is None:
        return HwConfig(**({"n_pe": n_pe} if n_pe is not None else {}))
    return HwConfig.for_model(model, 8 if n_pe is None else n_pe)


def cmd_generate(args) -> int:
    from mintaccel.hw.generate import generate
    from mintaccel.model_export.format import load_model
    model = load_model(args.model) if args.model else None
    cfg = hardware_config(args.config, model, args.n_pe)
    if args.target:  # refuse, before any elaboration, a build whose memories the FPGA cannot hold
        from mintaccel.flows.fit import check_device
        from mintaccel.flows.targets import get_target
        check_device(cfg, get_target(args.target))
    manifest = generate(args.out, cfg, model, preload=not args.no_preload)
    rows = [("output folder", args.out), ("Verilog", os.path.join(args.out, f"{manifest['top']}.v")),
            ("memories preloaded", "yes (runs on start)" if manifest["preloaded"] else "no (load through the host interface)"),
            ("n_pe / accumulator bits", f"{cfg.n_pe} / {cfg.accumulator_bits}"),
            ("weight banks", f"{cfg.n_pe} x {cfg.weight_depth} x {cfg.weight_bits} bits"),
            ("membrane memory", f"{cfg.membrane_depth} x {cfg.n_pe * cfg.membrane_bits} bits"),
            ("files", ", ".join(manifest["files"]))]
    report.table("mintaccel generate", rows)
    report.maybe_json(args.json, {"out": str(args.out), "manifest": manifest})
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="write the accelerator's Verilog, memory images and manifest")
    p.add_argument("--model", help="integer model file (its build runs it on start)")
    p.add_argument("--config", help="hardware config JSON (fields of hw.config.HwConfig)")
    p.add_argument("--n-pe", type=integer(1), help="processing elements (default 8)")
    output_option(p, "-o", "--out", folder=True, default="mintaccel-rtl",
                  help="output folder, replaced whole (default ./mintaccel-rtl)")
    p.add_argument("--no-preload", action="store_true", help="memories empty: load the model at run time")
    from mintaccel.flows.targets import TARGETS
    p.add_argument("--target", choices=tuple(TARGETS),
                   help="refuse a build whose block RAMs this FPGA cannot hold (the check `synth` makes)")
    output_option(p, "--json", metavar="PATH", help="also write the printed figures to this JSON file")
    p.set_defaults(func=cmd_generate)
