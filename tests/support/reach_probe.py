"""Run as root inside a container: what of the host's cgroup tree can it write?

Reads JSON on stdin: {"knobs": [paths of another container's cgroup files]}. Prints JSON:
  knobs_written           the neighbour's files it wrote (each rewritten with the value it had)
  cgroups_created         cgroups it created outside its own (each removed again at once)
  release_agents_writable hierarchy roots whose release_agent sits on a writable mount
                          (judged by the mount's flags, never written)
Stdlib only: it runs in the lab images with their python3.
"""

import json
import os
import sys

PROBE = "container-topology-lab-reach-probe"


def own_cgroups() -> dict[str, str]:
    """{controllers ("cpu", "name=systemd"; "" for cgroup2): this process's cgroup path} from /proc/self/cgroup."""
    with open("/proc/self/cgroup") as lines:
        return {line.split(":", 2)[1]: line.split(":", 2)[2].strip() for line in lines}


def mounts() -> list[tuple[str, str, str, str]]:
    """(mount point, root of the mounted tree, fs type, super options) of every mount, in mount order."""
    with open("/proc/self/mountinfo") as info:
        rows = []
        for line in info:
            left, right = line.split(" - ", 1)
            fields = left.split()
            fstype, _, options = right.split()[:3]
            rows.append((fields[4], fields[3], fstype, options))
        return rows


def cgroup_mounts() -> dict[str, tuple[str, str, str]]:
    """{mount point: (root of the mounted hierarchy, fs type, own cgroup path in it)}, the visible
    (last) mount at each point."""
    own = own_cgroups()
    found = {}
    for point, root, fstype, options in mounts():
        if fstype not in ("cgroup", "cgroup2") or not point.startswith("/sys/fs/cgroup"):
            continue
        opts = set(options.split(","))
        mine = next((path for ctrl, path in own.items()
                     if (fstype == "cgroup2" and not ctrl) or (ctrl and set(ctrl.split(",")) <= opts)), "/")
        found[point] = (root, fstype, mine)
    return found


def rewrite(path: str) -> bool:
    try:
        with open(path) as knob:
            value = knob.read()
        with open(path, "w") as knob:
            knob.write(value)
    except OSError:
        return False
    return True


def main() -> None:
    knobs = json.load(sys.stdin)["knobs"]
    report = {"knobs_written": [k for k in knobs if os.path.exists(k) and rewrite(k)],
              "cgroups_created": [], "release_agents_writable": []}
    # A release_agent with a file of another kind mounted over it (Podman binds /dev/null's like) is masked.
    masked = {point for point, _, fstype, _ in mounts() if fstype not in ("cgroup", "cgroup2")}
    for point, (root, fstype, mine) in sorted(cgroup_mounts().items()):
        if root != "/" or mine == "/":
            continue  # a bind of one subtree (its own slice), or a private namespace's view: not outside
        target = os.path.join(point, PROBE)
        try:
            os.mkdir(target)
        except OSError:
            pass
        else:
            os.rmdir(target)
            report["cgroups_created"].append(target)
        agent = os.path.join(point, "release_agent")
        if (fstype == "cgroup" and os.path.exists(agent) and agent not in masked
                and not os.statvfs(point).f_flag & os.ST_RDONLY):
            report["release_agents_writable"].append(agent)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
