"""Build the docker executor's worker image locally: `python -m dataserver.docker.image`.

No registry is reachable, so the base image is made with debootstrap (Debian's minimal
system plus python3) and `docker import`; the Dockerfile on top installs, from wheels built
here, exactly the library versions of the running environment. The image is labelled with a
hash of those versions and rebuilt only when they change.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

BASE_IMAGE = "xoda-base:bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = ("python3", "python3-venv", "libfftw3-double3", "ca-certificates")
# What steps import inside the container (their dependencies follow by pip's resolution).
WORKER_DISTRIBUTIONS = ("numpy", "scipy", "astropy", "diskcache", "jsonschema", "PyYAML", "sherpa")
LABEL = "org.xoda.requirements"


def requirements() -> list[str]:
    """Pinned requirements: the versions installed in this environment."""
    pins = []
    for name in WORKER_DISTRIBUTIONS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            log.warning("%s is not installed here; the worker image will not have it", name)
    return pins


def _docker():
    import docker
    return docker.from_env()


def build_base(build_dir: Path) -> None:
    rootfs = build_dir / "rootfs"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    log.info("debootstrap of Debian bookworm into %s (a few minutes)", rootfs)
    subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
                    "bookworm", str(rootfs), DEBIAN_MIRROR], check=True,
                   stdout=subprocess.DEVNULL)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    log.info("importing %s", BASE_IMAGE)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, check=True,
                   stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise RuntimeError("tar of the debootstrapped tree failed")
    shutil.rmtree(rootfs)


def build(image: str, build_dir: Path) -> str:
    client = _docker()
    pins = requirements()
    digest = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    try:
        existing = client.images.get(image)
        if existing.labels.get(LABEL) == digest:
            log.info("%s is up to date", image)
            return image
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        pass
    build_dir.mkdir(parents=True, exist_ok=True)
    try:
        client.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001
        build_base(build_dir)
    context = build_dir / "context"
    wheels = context / "wheels"
    if context.exists():
        shutil.rmtree(context)
    wheels.mkdir(parents=True)
    (wheels / "requirements.txt").write_text("\n".join(pins) + "\n")
    log.info("building wheels for %s", ", ".join(pins))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels),
                    "-r", str(wheels / "requirements.txt")], check=True)
    shutil.copy(Path(__file__).with_name("Dockerfile"), context / "Dockerfile")
    log.info("building %s", image)
    client.images.build(path=str(context), tag=image, rm=True, labels={LABEL: digest})
    shutil.rmtree(context)
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default="xoda-worker:latest")
    parser.add_argument("--build-dir", type=Path, default=Path(".build/worker-image"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    build(args.image, args.build_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
