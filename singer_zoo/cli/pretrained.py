"""`singer-zoo pretrained list | build [NAME...] | publish EXPORT_DIR`: the shipped embedders.

`build` makes the SavedModel/TFLite files of shipped embedders in the user cache ahead of
the first `singer_zoo.load(name)` (which would otherwise build them then); `publish` adds
or replaces a shipped embedder from a `singer-zoo export` folder (see
`singer_zoo.pretrained` and docs/export.md).
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("pretrained", help="list, build or publish shipped embedders",
                              description="The embedders shipped in the package.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="names, and where each one's built files are").set_defaults(
        func=run_list)
    b = sub.add_parser("build", help="build the SavedModel/TFLite files into the user cache")
    b.add_argument("names", nargs="*", metavar="NAME", help="default: every shipped embedder")
    b.add_argument("--force", action="store_true", help="rebuild even if a valid copy exists")
    b.set_defaults(func=run_build)
    u = sub.add_parser("publish", help="add a `singer-zoo export` folder to the shipped set")
    u.add_argument("export_dir", metavar="EXPORT_DIR")
    u.add_argument("--into", metavar="DIR",
                   help="shipped folder to write into (default: the package's shipped/)")
    u.add_argument("--origin", metavar="URL",
                   help="ship only the card; embedder.keras is fetched from URL on first use")
    u.set_defaults(func=run_publish)


def run_list(args) -> int:
    from singer_zoo import pretrained
    from singer_zoo.resources import cache_dir

    print(f"shipped in {pretrained.shipped_dir()}; built into {cache_dir() / 'exported'}")
    for name in pretrained.available():
        print(f"  {name}")
    return 0


def run_build(args) -> int:
    from singer_zoo import pretrained

    for name in args.names or pretrained.available():
        print(f"{name}: {pretrained.build(name, force=args.force)}")
    return 0


def run_publish(args) -> int:
    from singer_zoo import pretrained

    out = pretrained.publish(args.export_dir, into=args.into, origin=args.origin)
    print(f"published {out.name} to {out}")
    return 0
