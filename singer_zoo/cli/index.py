"""`singer-zoo index build|add|query`: search performances by voice (docs/export.md).

- `build DIR_OR_MANIFEST --model NAME_OR_PATH --out INDEX`: embed a folder of audio files
  or a manifest and store a faiss index (bad files are reported and skipped; an existing
  INDEX is replaced only with --overwrite);
- `add INDEX FILES...`: embed more recordings with the index's model and add them (files
  already indexed are reported and skipped);
- `remove INDEX ID_OR_PATH...`: remove recordings (no rebuild);
- `query INDEX AUDIO -k 10`: print the k nearest performances (squared distances).

`build` and `add` exit 1 when some files were skipped (the others are still indexed), as
`data check` and `features` do; 0 when all went in; 2 on a usage error.
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("index", help="search performances by voice",
                              description="Build, extend and query a voice-search index.")
    sub = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = sub.add_parser("build", help="embed a collection into a new index")
    b.add_argument("source", metavar="DIR_OR_MANIFEST")
    b.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                   help="exported model (name in exported/ or folder)")
    b.add_argument("--out", required=True, metavar="INDEX", help="index folder")
    b.add_argument("--kind", default="auto", choices=("auto", "flat", "ivf"),
                   help="auto (default): exact up to 200,000 16-d or 25,000 128-d "
                        "recordings, IVF beyond")
    b.add_argument("--overwrite", action="store_true", help="replace an existing INDEX")
    b.set_defaults(func=run_build)
    other_model = {"metavar": "NAME_OR_PATH",
                   "help": "exported model, if not the one the index was built with (e.g. moved)"}
    a = sub.add_parser("add", help="add recordings to an index without rebuilding")
    a.add_argument("index", metavar="INDEX")
    a.add_argument("files", nargs="+", metavar="FILE")
    a.add_argument("--model", **other_model)
    a.set_defaults(func=run_add)
    r = sub.add_parser("remove", help="remove recordings from an index without rebuilding")
    r.add_argument("index", metavar="INDEX")
    r.add_argument("items", nargs="+", metavar="ID_OR_PATH")
    r.set_defaults(func=run_remove)
    q = sub.add_parser("query", help="the nearest performances to a recording")
    q.add_argument("index", metavar="INDEX")
    q.add_argument("audio", metavar="AUDIO")
    q.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    q.add_argument("--model", **other_model)
    q.set_defaults(func=run_query)


def _report(failed: dict) -> None:
    for msg in failed.values():
        print(f"skipped {msg}")


def run_build(args) -> int:
    from singer_zoo import index

    idx, failed = index.build(args.source, args.model, args.out, kind=args.kind,
                              overwrite=args.overwrite)
    _report(failed)
    print(f"indexed {len(idx)} recordings in {args.out} ({len(failed)} skipped)")
    return 1 if failed else 0


def run_add(args) -> int:
    from singer_zoo import index

    ids, failed = index.add(args.index, args.files, args.model)
    _report(failed)
    print(f"added {len(ids)} recordings to {args.index} ({len(failed)} skipped)")
    return 1 if failed else 0


def run_remove(args) -> int:
    from singer_zoo import index

    n = index.remove(args.index, args.items)
    print(f"removed {n} recordings from {args.index}")
    return 0


def run_query(args) -> int:
    from singer_zoo import index

    hits = index.query(args.index, args.audio, args.k, args.model)
    print("# rank\tdistance\tid\tsinger\tsong\tpath")
    for rank, h in enumerate(hits, 1):
        print(f"{rank}\t{h.distance:.4f}\t{h.id}\t{h.singer or '-'}\t{h.song or '-'}\t{h.path}")
    return 0
