"""Host directories mounted into VMs: shown read-only by default, bounded by the host's
allow-list (`mount_roots`), confined against symlinks that lead out, and left out of snapshots."""

from __future__ import annotations

import errno
import io
import os
import tarfile

import pytest

from agentos_nb import agent_os, errors, mount
from agentos_nb.software import common
from tests.conftest import next_event

pytestmark = pytest.mark.anyio


@pytest.fixture
def host(tmp_path):
    """A mountable root with a project in it, and a secret beside the root that no VM may read."""
    root = tmp_path / "root"
    project = root / "project"
    (project / "src").mkdir(parents=True)
    (project / "README.md").write_text("hello from the host\n")
    (project / "src" / "main.py").write_text("print('hi')\n")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.txt").write_text("TOP-SECRET\n")
    return root, project, secret


async def test_a_mount_shows_the_host_directory_read_only(start_registry, host):
    root, project, _ = host
    kind = agent_os(software=[common], mounts=[mount(project, "/mnt/project")], mount_roots=[root])
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["a"])
    run = await vm.exec("cat /mnt/project/README.md; ls /mnt; ls /mnt/project/src")
    assert run.stdout == "hello from the host\nproject\nmain.py\n", run.stderr
    assert await vm.read_file("/mnt/project/src/main.py") == b"print('hi')\n"
    assert [entry.name for entry in await vm.readdir("/mnt/project")] == ["README.md", "src"]
    told = await vm.read_file("/etc/agentos/instructions.md", encoding="utf-8")
    assert "- /mnt/project (read-only)" in told
    (project / "new.txt").write_text("made on the host later\n")  # the host's directory, live
    assert (await vm.exec("cat /mnt/project/new.txt")).stdout == "made on the host later\n"


@pytest.mark.parametrize(
    "script",
    [
        "echo x > /mnt/project/README.md",
        "echo x >> /mnt/project/new.txt",
        "rm /mnt/project/README.md",
        "mkdir /mnt/project/dir",
        "mv /mnt/project/README.md /tmp/",
        "chmod 777 /mnt/project/README.md",
        "ln -s /etc /mnt/project/etc",
    ],
)
async def test_a_read_only_mount_refuses_every_change_naming_the_path(start_registry, host, script):
    root, project, _ = host
    kind = agent_os(software=[common], mounts=[mount(project, "/mnt/project")], mount_roots=[root])
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["ro"])
    run = await vm.exec(script)
    assert run.exit_code != 0
    assert "/mnt/project/" in run.stderr, run.stderr
    assert "read-only" in run.stderr, run.stderr
    assert (project / "README.md").read_text() == "hello from the host\n"
    assert sorted(os.listdir(project)) == ["README.md", "src"]


async def test_the_file_api_refuses_changes_to_a_read_only_mount(start_registry, host):
    root, project, _ = host
    kind = agent_os(mounts=[mount(project, "/mnt/project")], mount_roots=[root])
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["ro-api"])
    for action, *args in (
        ("write_file", "/mnt/project/README.md", "overwritten"),
        ("delete_file", "/mnt/project/README.md"),
        ("mkdir", "/mnt/project/new"),
        ("move", "/mnt/project/README.md", "/mnt/project/moved.md"),
    ):
        with pytest.raises(OSError, match="read-only") as raised:
            await getattr(vm, action)(*args)
        assert raised.value.errno == errno.EROFS
        assert raised.value.filename.startswith("/mnt/project/")
    with pytest.raises(OSError, match="mounted") as raised:  # the mount point is not the VM's to remove
        await vm.delete_file("/mnt", recursive=True)
    assert raised.value.errno == errno.EBUSY
    assert (project / "README.md").read_text() == "hello from the host\n"


async def test_a_writable_mount_writes_through_to_the_host(start_registry, host):
    root, project, _ = host
    kind = agent_os(software=[common], mounts=[mount(project, "/work", read_only=False)], mount_roots=[root])
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["rw"])
    run = await vm.exec("cd /work && echo built > out.txt && mkdir -p dist && cp src/main.py dist/")
    assert run.exit_code == 0, run.stderr
    await vm.write_file("/work/from-api.txt", "api")
    assert (project / "out.txt").read_text() == "built\n"
    assert (project / "dist" / "main.py").read_text() == "print('hi')\n"
    assert (project / "from-api.txt").read_text() == "api"
    with pytest.raises(OSError, match="cannot move between") as raised:  # across filesystems, as on Linux
        await vm.move("/work/out.txt", "/home/user/out.txt")
    assert raised.value.errno == errno.EXDEV


async def test_symlinks_in_a_mount_never_lead_out_of_it(start_registry, host):
    root, project, secret = host
    os.symlink(secret / "key.txt", project / "absolute")
    os.symlink("../../secret/key.txt", project / "relative")
    os.symlink(secret, project / "directory")
    kind = agent_os(software=[common], mounts=[mount(project, "/mnt/p", read_only=False)], mount_roots=[root])
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["links"])
    for link in ("absolute", "relative", "directory/key.txt"):
        run = await vm.exec(f"cat /mnt/p/{link}")
        assert run.exit_code != 0, (link, run)
        assert "TOP-SECRET" not in run.stdout, (link, run)
        with pytest.raises((FileNotFoundError, PermissionError)):
            await vm.read_file(f"/mnt/p/{link}")
    run = await vm.exec("cat /mnt/p/../../secret/key.txt; cat /mnt/p/src/../../secret/key.txt")
    assert "TOP-SECRET" not in run.stdout
    # the VM cannot plant a link that leads out either
    for target in (str(secret / "key.txt"), "../../secret/key.txt", "/etc"):
        run = await vm.exec(f"ln -s {target} /mnt/p/planted")
        assert run.exit_code != 0, (target, run)
    assert "planted" not in os.listdir(project)


async def test_mounted_files_stay_out_of_snapshots_and_come_back_from_the_host(start_registry, host):
    root, project, _ = host
    kind = agent_os(
        software=[common],
        mounts=[mount(project, "/work", read_only=False)],
        mount_roots=[root],
        options={"sleep_timeout": 0.2},
    )
    registry = await start_registry(vm=kind)
    vm = registry.client().vm.get_or_create(["sleepy"])
    await vm.exec("echo mine > /home/user/own.txt; echo host > /work/made-in-vm.txt")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    saved = await registry.store.load_blob(await vm.resolve(), "filesystem")
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        names = archive.getnames()
    assert "home/user/own.txt" in names
    assert not [name for name in names if name.startswith("work/")]
    (project / "made-in-vm.txt").unlink()  # changed on the host while the VM slept
    run = await vm.exec("cat /home/user/own.txt; ls /work")
    assert run.stdout == "mine\nREADME.md\nsrc\n", run.stderr


async def test_nothing_is_mountable_without_roots(host):
    _, project, _ = host
    with pytest.raises(errors.InvalidDefinition, match=r"outside the host's mount roots.*none"):
        agent_os(mounts=[mount(project, "/mnt/p")])


async def test_a_path_outside_the_roots_is_refused_naming_it(host):
    root, _, secret = host
    with pytest.raises(errors.InvalidDefinition, match=f"{secret}.*outside the host's mount roots"):
        agent_os(mounts=[mount(secret, "/mnt/s")], mount_roots=[root])
    with pytest.raises(errors.InvalidDefinition, match="outside"):
        agent_os(mounts=[mount(root / "project" / ".." / ".." / "secret", "/mnt/s")], mount_roots=[root])


async def test_a_symlink_under_the_roots_that_leads_out_is_refused(host):
    root, _, secret = host
    os.symlink(secret, root / "innocent")
    with pytest.raises(errors.InvalidDefinition, match=f"innocent \\(really {secret}\\)"):
        agent_os(mounts=[mount(root / "innocent", "/mnt/s")], mount_roots=[root])


async def test_the_host_checks_again_when_the_vm_opens(start_registry, host):
    """A directory swapped for a symlink after the type was defined is caught on the host."""
    root, project, secret = host
    kind = agent_os(mounts=[mount(project, "/mnt/p")], mount_roots=[root])
    project.rename(root / "moved")
    os.symlink(secret, project)
    vm = (await start_registry(vm=kind)).client().vm.get_or_create(["swapped"])
    with pytest.raises(Exception, match="outside the host's mount roots") as raised:
        await vm.exec("cat /mnt/p/key.txt")
    assert "TOP-SECRET" not in str(raised.value)


@pytest.mark.parametrize(
    ("vm_path", "said"),
    [
        ("relative/path", "absolute"),
        ("/mnt/../etc", "normalised"),
        ("/", "root"),
        ("/dev/data", "/dev"),
        ("/tmp", "/tmp"),
        ("/home", "/home/user"),
        ("/home/user", "/home/user"),
        ("/etc", "/etc/"),
        ("/etc/hostname", "/etc/hostname"),
    ],
)
async def test_a_mount_may_not_take_the_vms_own_paths(host, vm_path, said):
    root, project, _ = host
    with pytest.raises(errors.InvalidDefinition, match=said):
        agent_os(mounts=[mount(project, vm_path)], mount_roots=[root])


async def test_bad_mount_arguments_are_refused(host, tmp_path):
    root, project, _ = host
    with pytest.raises(errors.InvalidDefinition, match="overlap"):
        agent_os(mounts=[mount(project, "/mnt/p"), mount(project / "src", "/mnt/p/src")], mount_roots=[root])
    with pytest.raises(errors.InvalidDefinition, match="not a directory"):
        agent_os(mounts=[mount(project / "README.md", "/mnt/p")], mount_roots=[root])
    with pytest.raises(errors.InvalidDefinition, match="not a directory"):
        agent_os(mounts=[mount(project, "/mnt/p")], mount_roots=[tmp_path / "missing"])
    with pytest.raises(errors.InvalidDefinition, match="mount\\(\\.\\.\\.\\)"):
        agent_os(mounts=[(str(project), "/mnt/p")], mount_roots=[root])  # type: ignore[list-item]


async def test_a_vm_that_buries_its_mount_point_still_wakes_with_it(start_registry, host):
    """What the VM put on the way to a mount point stays out of the next boot: the host places it."""
    root, project, _ = host
    kind = agent_os(
        software=[common],
        mounts=[mount(project, "/mnt/p")],
        mount_roots=[root],
        options={"sleep_timeout": 0.2},
    )
    registry = await start_registry(vm=kind)
    vm = registry.client().vm.get_or_create(["buried"])
    await vm.exec("rm -rf /mnt; ln -s /tmp /mnt")
    with registry.bus.subscribe(types=["actor.slept"]) as slept:
        await next_event(slept, "actor.slept")
    run = await vm.exec("cat /mnt/p/README.md; ls /mnt")
    assert run.stdout == "hello from the host\np\n", run.stderr
    assert (project / "README.md").read_text() == "hello from the host\n"
