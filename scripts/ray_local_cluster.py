"""A Ray cluster of a head and N worker nodes on this machine, each its own raylet with its own
CPUs (Ray's ``cluster_utils``, as tests/flows/test_cluster.py starts it): to try
``scale_out: {runner: ray}`` across nodes without a second machine. The head takes no work, so
every step lands on a worker node. Prints the address to give ``scale_out.ray_address``, then
holds the cluster until interrupted.

    python scripts/ray_local_cluster.py --workers 2 --cpus 1
"""

from __future__ import annotations

import argparse
import signal

from ray.cluster_utils import Cluster


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    parser.add_argument("--cpus", type=float, default=1, help="CPUs each worker node offers")
    args = parser.parse_args()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    for _ in range(args.workers):
        cluster.add_node(num_cpus=args.cpus)
    cluster.wait_for_nodes()
    print(cluster.address, flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop on SIGTERM as on Ctrl-C
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
