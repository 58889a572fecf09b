"""Placeholder demo; replaced by the real pipeline."""


def main(args) -> int:
    import steadyrun

    run = steadyrun.init(project="steadyrun-demo", mode=args.mode or "local")
    for i in range(10):
        run.log({"train/loss": 1.0 / (i + 1)})
    run.finish()
    print(f"run {run.id} at {run.dir}")
    return 0
