"""Drives oras-py (PyPI's `oras`), a real ORAS client, for cli/tests/serve_clients.rs.

    push TARGET FILE MEDIA_TYPE [--artifact-type T] [--subject DIGEST SIZE MEDIA_TYPE]
         [--annotation KEY=VALUE]... [--chunk-size N]
    pull TARGET OUTDIR

TARGET is HOST:PORT/IMAGE:TAG, over plain HTTP. `push` uploads FILE as the one layer
(in PATCH chunks of N bytes with Content-Range when --chunk-size is given), the
artifact type as the config's media type, and a manifest with the subject and
annotations; it prints the manifest's digest. `pull` writes the layers into OUTDIR
and prints their paths. Any failure exits non-zero with oras-py's error on stderr.
Run with oras-py on PYTHONPATH (scripts/install-clients.sh installs it).
"""

import argparse
import sys

import oras.client
import oras.decorator
import oras.oci

# oras-py retries every request that raised (a 403 raises: it takes any 403 for an
# authentication challenge) six times, waiting 2 + 3**n seconds in between, over two
# minutes in all. The tests want the refusal at once: the retries still happen, the
# waits do not.
oras.decorator.time = type("NoWait", (), {"sleep": staticmethod(lambda seconds: None)})


def main():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push")
    push.add_argument("target")
    push.add_argument("file")
    push.add_argument("media_type")
    push.add_argument("--artifact-type")
    push.add_argument("--subject", nargs=3, metavar=("DIGEST", "SIZE", "MEDIA_TYPE"))
    push.add_argument("--annotation", action="append", default=[])
    push.add_argument("--chunk-size", type=int)
    pull = commands.add_parser("pull")
    pull.add_argument("target")
    pull.add_argument("outdir")
    args = parser.parse_args()

    client = oras.client.OrasClient(hostname=args.target.split("/")[0], insecure=True)
    if args.command == "push":
        subject = None
        if args.subject:
            digest, size, media_type = args.subject
            subject = oras.oci.Subject(mediaType=media_type, digest=digest, size=int(size))
        annotations = dict(a.split("=", 1) for a in args.annotation)
        options = {}
        if args.chunk_size:
            options = {"do_chunked": True, "chunk_size": args.chunk_size}
        response = client.push(
            target=args.target,
            files=[f"{args.file}:{args.media_type}"],
            disable_path_validation=True,
            manifest_config=f"/dev/null:{args.artifact_type}" if args.artifact_type else None,
            manifest_annotations=annotations or None,
            subject=subject,
            quiet=True,
            **options,
        )
        if response.status_code != 201:
            print(f"manifest push answered {response.status_code}: {response.text}", file=sys.stderr)
            sys.exit(1)
        print(response.headers["Docker-Content-Digest"])
    else:
        for path in client.pull(target=args.target, outdir=args.outdir):
            print(path)


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # oras-py raises ValueError and requests' errors
        print(f"oras-py failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
