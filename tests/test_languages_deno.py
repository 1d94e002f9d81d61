"""JavaScript and TypeScript in the VM through Deno (`node`, `deno`, `tsx`): programs as host Deno
runs them, tests, argv/stdin/cwd, files coming back, limits, and escape attempts refused."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest

from agentos_nb import ShellLimits, agent_os, setup
from agentos_nb.software import common
from agentos_nb.vm.languages.deno import deno_binary

pytestmark = pytest.mark.anyio

PROJECT = "/home/user/proj"
SECRET_VARIABLE = "AGENTOS_TEST_DENO_SECRET"
SECRET = f"kernel-secret-{uuid.uuid4().hex}"

# A program of the kind an agent writes: JSON, regular expressions, classes, maps, files.
PROGRAM = """\
import { readFileSync, writeFileSync, readdirSync } from "node:fs";

interface Order { id: number; customer: string; lines: { sku: string; qty: number; price: number }[] }

class Ledger {
  private totals = new Map<string, number>();
  add(order: Order): void {
    const sum = order.lines.reduce((acc, line) => acc + line.qty * line.price, 0);
    this.totals.set(order.customer, (this.totals.get(order.customer) ?? 0) + sum);
  }
  report(): string[] {
    return [...this.totals.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([customer, total]) => `${customer.padEnd(8)} ${total.toFixed(2)}`);
  }
}

const orders: Order[] = JSON.parse(readFileSync("data/orders.json", "utf8"));
const ledger = new Ledger();
orders.forEach((order) => ledger.add(order));
console.log(ledger.report().join("\\n"));
const skus = orders.flatMap((o) => o.lines.map((l) => l.sku)).filter((s) => /^[A-Z]{2}-\\d+$/.test(s));
console.log("valid skus:", [...new Set(skus)].sort().join(","));
console.log("files:", readdirSync("data").sort().join(","));
writeFileSync("report.txt", ledger.report().join("\\n") + "\\n");
"""
ORDERS = [
    {"id": 1, "customer": "carol", "lines": [{"sku": "AB-1", "qty": 2, "price": 3.5}]},
    {
        "id": 2,
        "customer": "alice",
        "lines": [{"sku": "cd-2", "qty": 1, "price": 10}, {"sku": "AB-1", "qty": 1, "price": 3.5}],
    },
    {"id": 3, "customer": "carol", "lines": [{"sku": "XY-77", "qty": 4, "price": 0.25}]},
]
PASSING_TEST = 'import { strictEqual } from "node:assert";\nDeno.test("adds", () => strictEqual(1 + 1, 2));\n'
FAILING_TEST = 'import { strictEqual } from "node:assert";\nDeno.test("adds", () => strictEqual(1 + 1, 3));\n'
NODE_TEST = (
    'import test from "node:test";\nimport assert from "node:assert";\n'
    'test("ok", () => assert.equal(2 * 2, 4));\n'
)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def vm():
    """One VM for the module, its host started while the kernel's environment held a secret."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_VARIABLE, SECRET)
        limits = ShellLimits(timeout=60, max_output_bytes=100_000, max_memory=256 * 1024 * 1024)
        registry = setup(
            use={"vm": agent_os(software=[common], limits=limits)}, store="memory", name="test-deno"
        )
        registry.start()
        await registry.ready()
        handle = registry.client().vm.get_or_create(["deno"])
        await handle.exec("true")  # the host starts now, with the secret in the kernel's environment
    yield handle
    await registry.stop(grace=0)


@pytest.fixture
async def project(vm):
    if await vm.exists(PROJECT):
        await vm.delete_file(PROJECT, recursive=True)
    await vm.write_files(
        {
            f"{PROJECT}/main.ts": PROGRAM,
            f"{PROJECT}/data/orders.json": json.dumps(ORDERS),
            f"{PROJECT}/data/notes.txt": "x\n",
        }
    )
    return vm


async def test_a_typescript_program_prints_what_host_deno_prints(project, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "main.ts").write_text(PROGRAM)
    (tmp_path / "data" / "orders.json").write_text(json.dumps(ORDERS))
    (tmp_path / "data" / "notes.txt").write_text("x\n")
    host = await asyncio.create_subprocess_exec(
        deno_binary(), "run", "-A", "--no-config", "main.ts",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"NO_COLOR": "1", "DENO_DIR": str(tmp_path / ".deno"), "PATH": os.environ["PATH"]},
    )  # fmt: skip
    host_out, host_err = await host.communicate()
    assert host.returncode == 0, host_err
    run = await project.exec("node main.ts", cwd=PROJECT)
    assert (run.exit_code, run.stdout, run.stderr) == (0, host_out.decode(), "")
    assert "carol    8.00" in run.stdout
    # what the program wrote is in the VM, as the host's run wrote it on the host
    assert (await project.exec("cat report.txt", cwd=PROJECT)).stdout == (tmp_path / "report.txt").read_text()


async def test_tsx_npx_and_deno_run_the_same_file(project):
    for command in ("tsx main.ts", "npx tsx main.ts", "deno run main.ts", "/usr/bin/node main.ts"):
        run = await project.exec(command, cwd=PROJECT)
        assert (run.exit_code, run.stdout.splitlines()[0]) == (0, "alice    13.50"), (command, run)


async def test_argv_stdin_and_cwd_reach_the_program(project):
    await project.write_file(f"{PROJECT}/args.js", "console.log(JSON.stringify(Deno.args), Deno.cwd());\n")
    await project.write_file(
        f"{PROJECT}/echo.mjs",
        'import { readFileSync } from "node:fs";\nconsole.log(readFileSync(0, "utf8").toUpperCase());\n',
    )
    args = await project.exec("node args.js 'a b' c", cwd=PROJECT)
    assert args.stdout == f'["a b","c"] {PROJECT}\n'
    piped = await project.exec("printf 'hello' | node echo.mjs", cwd=PROJECT)
    assert piped.stdout == "HELLO\n"
    assert (await project.exec("node -e 'console.log(40 + 2)'")).stdout == "42\n"
    assert (await project.exec("node -p '[1, 2].length'")).stdout == "2\n"
    assert (await project.exec("echo 'console.log(7)' | node")).stdout == "7\n"
    assert (await project.exec("node --version")).stdout.startswith("v")


async def test_files_made_changed_and_removed_come_back(project):
    await project.write_file(f"{PROJECT}/old.txt", "old\n")
    script = (
        'Deno.mkdirSync("out/deep", { recursive: true }); Deno.writeTextFileSync("out/deep/new.txt", "new");'
        'Deno.writeTextFileSync("data/notes.txt", "changed"); Deno.removeSync("old.txt");'
    )
    run = await project.exec(f"node -e '{script}' && cat out/deep/new.txt data/notes.txt", cwd=PROJECT)
    assert (run.exit_code, run.stdout) == (0, "newchanged")
    assert not await project.exists(f"{PROJECT}/old.txt")


async def test_deno_test_and_node_test_exit_as_their_results(project):
    await project.write_files(
        {f"{PROJECT}/tests/ok_test.ts": PASSING_TEST, f"{PROJECT}/bad/bad_test.ts": FAILING_TEST}
    )
    passing = await project.exec("deno test tests/", cwd=PROJECT)
    assert passing.exit_code == 0, passing
    assert "1 passed" in passing.stdout
    failing = await project.exec("deno test bad/", cwd=PROJECT)
    assert failing.exit_code == 1
    assert "1 failed" in failing.stdout
    await project.write_file(f"{PROJECT}/node/ok.test.mjs", NODE_TEST)
    node = await project.exec("node --test node/ok.test.mjs", cwd=PROJECT)
    assert node.exit_code == 0, node


async def test_deno_check_finds_a_type_error(project):
    await project.write_file(f"{PROJECT}/typed.ts", 'const n: number = "seven";\nconsole.log(n);\n')
    assert (await project.exec("deno check main.ts", cwd=PROJECT)).exit_code == 0
    wrong = await project.exec("deno check typed.ts", cwd=PROJECT)
    assert wrong.exit_code == 1
    assert f"file://{PROJECT}/typed.ts" in wrong.stderr  # as seen from the VM, not the host's copy


async def test_seed_000s_api_ts_type_checks(project):
    from agentos_nb.agents.offline import drafts

    draft = drafts._TS_API.replace("@items@", "notes").replace("@item@", "note").replace("@Item@", "Note")
    await project.write_file(f"{PROJECT}/api.ts", draft)
    checked = await project.exec("deno check api.ts", cwd=PROJECT)
    assert checked.exit_code == 0, checked.stderr


# --- limits: each stops the program with its exit code, and the VM goes on -------------------


async def test_a_cpu_loop_is_stopped_at_the_timeout(project):
    run = await project.exec("node -e 'while (true) {}'", timeout=2)
    assert run.exit_code == 124
    assert (await project.exec("node -e 'console.log(1)'")).stdout == "1\n"


async def test_a_memory_blow_up_is_stopped(project):
    run = await project.exec("node -e 'const a = []; while (true) a.push(new Array(1e6).fill(1.5))'")
    assert run.exit_code in (133, 134)  # V8's fatal out-of-memory: SIGTRAP (or SIGABRT)
    assert "out of memory" in run.stderr
    assert (await project.exec("node -e 'console.log(1)'")).stdout == "1\n"


async def test_an_output_flood_is_cut_at_the_limit(project):
    run = await project.exec("node -e 'for (let i = 0; i < 1e5; i++) console.log(\"x\".repeat(100))'")
    assert run.exit_code == 0
    assert len(run.stdout.encode()) <= 100_000
    assert run.truncated


MAX_MEMORY = 256 * 1024 * 1024  # the module VM's limit
FILL = f"""\
import {{ writeFileSync }} from "node:fs";
const chunk = new Uint8Array({MAX_MEMORY // 100});
for (let i = 0; i < 200; i++) writeFileSync(`fill-${{i}}.bin`, chunk);
console.log("all written");
"""


def _filled_on_the_host() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("agentos-deno-*/work/fill-*.bin"))


async def test_files_past_the_memory_limit_stop_the_program_while_it_runs(project):
    await project.write_file(f"{PROJECT}/fill.js", FILL)
    run = await project.exec(f"cd {PROJECT} && node fill.js")
    assert run.exit_code == 153, run.stderr
    assert "pass the VM's memory limit" in run.stderr
    assert "all written" not in run.stdout
    assert not _filled_on_the_host()  # the working copy is gone from the host's /tmp
    assert not [entry for entry in await project.readdir(PROJECT) if entry.name.startswith("fill-")]
    assert (await project.exec("node -e 'console.log(1)'")).stdout == "1\n"


OVERLAP = """\
import { writeFileSync } from "node:fs";
const start = Date.now();
await new Promise((resolve) => setTimeout(resolve, 1500));
writeFileSync(`times-${Deno.args[0]}.json`, JSON.stringify([start, Date.now()]));
"""


async def test_at_most_two_deno_runs_of_one_vm_overlap(project):
    await project.write_file(f"{PROJECT}/overlap.js", OVERLAP)
    runs = await asyncio.gather(*(project.exec(f"cd {PROJECT} && node overlap.js {i}") for i in range(4)))
    assert [run.exit_code for run in runs] == [0] * 4, [run.stderr for run in runs]
    spans = [
        json.loads(await project.read_file(f"{PROJECT}/times-{i}.json", encoding="utf-8")) for i in range(4)
    ]
    most = max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)
    assert most <= 2, spans


# --- escapes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "refused"),
    [
        ("node -e 'Deno.readTextFileSync(\"/etc/passwd\")'", "NotCapable"),
        ("node -e 'Deno.readTextFileSync(\"../../../etc/hostname\")'", "NotCapable"),
        ("node -e 'new Deno.Command(\"/usr/bin/id\").outputSync()'", "NotCapable"),
        ("node -e 'await fetch(\"http://10.0.0.1:8080/\")'", "NotCapable"),
        ("node -e 'Deno.dlopen(\"libc.so.6\", {})'", "NotCapable"),
        ("node -e 'console.log(Deno.env.toObject())'", "NotCapable"),
        ("node -e 'console.log(process.env.PATH)'", "NotCapable"),
        ('node -e \'import("node:child_process").then((cp) => cp.execSync("id"))\'', "NotCapable"),
        # Deno reads imported files without asking its permissions; Landlock refuses them
        ('node -e \'await import("/etc/hostname", { with: { type: "text" } })\'', "denied"),
        ('node -e \'await import("file:///proc/self/environ", { with: { type: "text" } })\'', "denied"),
        ("node /etc/passwd", "outside the working directory"),
        ("deno run --allow-all main.ts", "not allowed"),
        ("deno run -A main.ts", "not allowed"),
        ("node --test --allow-all", "not allowed"),
        ("deno test --allow-env=HOME", "not allowed"),
        ("deno run --config=/etc/passwd main.ts", "not allowed"),
        ("deno run https://example.com/x.ts", "no URLs"),
        ("deno compile main.ts", "not available"),
        ("npx cowsay hi", "no npm registry"),
    ],
)
async def test_escapes_are_refused(project, command, refused):
    run = await project.exec(command, cwd=PROJECT)
    assert run.exit_code != 0, run
    assert refused in run.stdout + run.stderr, run
    assert SECRET not in run.stdout + run.stderr


async def test_the_kernels_environment_is_not_seen(project):
    # a host process holding the secret in its environment, as the kernel does with its API keys
    holder = await asyncio.create_subprocess_exec("sleep", "30", env={SECRET_VARIABLE: SECRET})
    try:
        paths = ["/proc/self/environ", f"/proc/{holder.pid}/environ", f"/proc/{os.getpid()}/environ"]
        probe = "".join(  # literal imports: Deno reads those unasked (a parse error quotes the file)
            f"try {{ console.log(Deno.readTextFileSync({path!r})); }} catch (e) {{ console.log(e.name); }}\n"
            f'try {{ console.log((await import({path!r}, {{ with: {{ type: "text" }} }})).default); }}\n'
            "catch (e) { console.log(`${e.name}: ${e.message}`); }\n"
            for path in paths
        )
        await project.write_file(f"{PROJECT}/probe.ts", probe)
        run = await project.exec("node probe.ts", cwd=PROJECT)
    finally:
        holder.kill()
        await holder.wait()
    assert run.stdout.count("NotCapable") == 3, run  # Deno's permissions
    assert SECRET not in run.stdout + run.stderr  # and Landlock, for what Deno reads unasked
    assert SECRET_VARIABLE not in run.stdout + run.stderr


async def test_a_symlink_out_of_the_working_copy_brings_nothing_back(project):
    run = await project.exec('node -e \'Deno.symlinkSync("/etc/passwd", "link")\'; cat link; ls', cwd=PROJECT)
    assert "root:" not in run.stdout
    assert "link" not in run.stdout.split()


def test_the_kernel_knows_the_runtimes_commands_without_loading_them() -> None:
    """The stubs in /usr/bin come from `program_names`, made without importing the runtimes."""
    from agentos_nb.vm.languages import program_names, programs

    for features in ({"python"}, {"javascript"}, {"python", "javascript"}, set()):
        assert sorted(program_names(features)) == sorted(programs(features))
