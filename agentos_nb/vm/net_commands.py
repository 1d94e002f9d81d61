"""`curl`, `wget` and `http` inside a VM with a network: host commands of the VM's host
process that make their requests through `Outbound`, so the VM's rules and hidden credentials
apply. They take the options scripts and agents use most; an option they do not know is an
error that names it, never silently ignored. Without a network the engine's own commands
stay, and refuse every URL.
"""

from __future__ import annotations

import base64
import json
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from agentos_nb.vm.files import VmFiles, resolve_path
from agentos_nb.vm.network import Network, NetworkError
from agentos_nb.vm.outbound import MAX_BODY, Outbound, Refused, Reply, TimedOut, TooManyRedirects, Unreachable
from agentos_nb.vm.shell import CommandCall, CommandHandler, CommandReply

NETWORK_COMMANDS = ("curl", "wget", "http")
_CURL_AGENT = "curl/8.7.1"
_WGET_AGENT = "Wget/1.21.3"
_HTTPIE_AGENT = "HTTPie/3.2.2"


class UsageError(ValueError):
    """The command line is wrong: an unknown option, a missing value."""


def network_commands(
    policy: Network, files: Callable[[], VmFiles], *, max_memory: int
) -> dict[str, CommandHandler]:
    """The commands of a VM with `policy`; `files` gives the VM's files (for `-o`, `-d @file`).
    A response keeps at most `MAX_BODY` bytes, and never more than the VM's `max_memory`."""
    outbound = Outbound(policy)
    tools = _Tools(outbound, files, max_body=min(MAX_BODY, max_memory))
    return {"curl": tools.curl, "wget": tools.wget, "http": tools.http}


@dataclass
class _Request:
    method: str | None = None
    url: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    follow: bool = False
    max_redirects: int = 50
    timeout: float = 60.0


class _Tools:
    def __init__(self, outbound: Outbound, files: Callable[[], VmFiles], *, max_body: int) -> None:
        self._outbound = outbound
        self._files = files
        self._max_body = max_body

    # --- curl ------------------------------------------------------------------------------------

    async def curl(self, call: CommandCall) -> CommandReply:
        request = _Request()
        silent = show_error = fail = include = head = remote_name = json_body = False
        output: str | None = None
        write_out: str | None = None
        try:
            args = _Args(call.argv, "curl")
            for option, take in args:
                if option is None:
                    request.url = take()
                elif option in ("-s", "--silent"):
                    silent = True
                elif option in ("-S", "--show-error"):
                    show_error = True
                elif option in ("-f", "--fail"):
                    fail = True
                elif option in ("-L", "--location"):
                    request.follow = True
                elif option in ("-i", "--include"):
                    include = True
                elif option in ("-I", "--head"):
                    head = True
                elif option in ("-X", "--request"):
                    request.method = take().upper()
                elif option in ("-H", "--header"):
                    request.headers.append(_header(take(), "curl"))
                elif option in ("-d", "--data", "--data-ascii", "--data-binary", "--data-raw"):
                    value = take()
                    data = value.encode() if option == "--data-raw" else self._data(value, call)
                    if option in ("-d", "--data", "--data-ascii"):
                        data = data.replace(b"\r", b"").replace(b"\n", b"")
                    request.body = data if request.body is None else request.body + b"&" + data
                elif option == "--json":
                    request.body = (request.body or b"") + self._data(take(), call)
                    json_body = True
                elif option in ("-o", "--output"):
                    output = take()
                elif option in ("-O", "--remote-name"):
                    remote_name = True
                elif option in ("-w", "--write-out"):
                    write_out = take()
                elif option in ("-m", "--max-time"):
                    request.timeout = _number(take(), option, "curl")
                elif option == "--max-redirs":
                    request.max_redirects = int(_number(take(), option, "curl"))
                elif option in ("-A", "--user-agent"):
                    request.headers.append(("User-Agent", take()))
                elif option in ("-u", "--user"):
                    credentials = base64.b64encode(take().encode()).decode()
                    request.headers.append(("Authorization", f"Basic {credentials}"))
                elif option == "--compressed":
                    request.headers.append(("Accept-Encoding", "gzip, deflate"))  # decoded as they come
                else:
                    raise UsageError(f"curl: option {option}: is unknown or not supported here")
        except UsageError as error:
            return CommandReply(
                stderr=f"{error}\ncurl: try 'curl --help' for more information\n", exit_code=2
            )
        if request.url is None:
            return CommandReply(stderr="curl: no URL specified\n", exit_code=2)
        names = {name.lower() for name, _ in request.headers}
        if json_body:
            if "content-type" not in names:
                request.headers.append(("Content-Type", "application/json"))
            if "accept" not in names:
                request.headers.append(("Accept", "application/json"))
        elif request.body is not None and "content-type" not in names:
            request.headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if "user-agent" not in names:
            request.headers.append(("User-Agent", _CURL_AGENT))
        method = request.method or ("HEAD" if head else "POST" if request.body is not None else "GET")
        reply, problem = await self._send(request, method)
        if reply is None:
            code, message = problem
            return CommandReply(
                stderr=f"curl: ({code}) {message}\n" if show_error or not silent else "", exit_code=code
            )
        if fail and reply.status >= 400:
            message = f"curl: (22) The requested URL returned error: {reply.status}\n"
            return CommandReply(stderr=message if show_error or not silent else "", exit_code=22)
        shown = b""
        if include or head:
            for hop in [*reply.hops, reply] if request.follow else [reply]:
                shown += _status_block(hop).encode()
        if not head:
            shown += reply.body
        stderr = "" if not reply.truncated else f"curl: the response was cut at {len(reply.body)} bytes\n"
        if output is not None or remote_name:
            name = (
                output if output is not None else posixpath.basename(reply.url.split("?")[0]) or "index.html"
            )
            if name != "-":
                try:
                    self._files().write_file(resolve_path(name, call.cwd), shown)
                except (OSError, ValueError) as error:
                    return CommandReply(
                        stderr=f"curl: (23) failed writing to {name}: {error}\n", exit_code=23
                    )
                shown = b""
        stdout = shown.decode(errors="replace")
        if write_out is not None:
            stdout += _write_out(write_out, reply)
        return CommandReply(stdout=stdout, stderr=stderr)

    # --- wget ------------------------------------------------------------------------------------

    async def wget(self, call: CommandCall) -> CommandReply:
        request = _Request(follow=True, max_redirects=20, timeout=900.0)
        quiet, output = False, None
        try:
            for option, take in _Args(call.argv, "wget"):
                if option is None:
                    request.url = take()
                elif option in ("-q", "--quiet"):
                    quiet = True
                elif option in ("-O", "--output-document"):
                    output = take()
                elif option == "--header":
                    request.headers.append(_header(take(), "wget"))
                elif option in ("--post-data", "--body-data"):
                    request.body = take().encode()
                    request.method = request.method or "POST"
                elif option == "--method":
                    request.method = take().upper()
                elif option in ("-T", "--timeout"):
                    request.timeout = _number(take(), option, "wget")
                elif option in ("-U", "--user-agent"):
                    request.headers.append(("User-Agent", take()))
                elif option == "--max-redirect":
                    request.max_redirects = int(_number(take(), option, "wget"))
                else:
                    raise UsageError(f"wget: unrecognized option '{option}'")
        except UsageError as error:
            return CommandReply(stderr=f"{error}\n", exit_code=2)
        if request.url is None:
            return CommandReply(stderr="wget: missing URL\n", exit_code=1)
        if not any(name.lower() == "user-agent" for name, _ in request.headers):
            request.headers.append(("User-Agent", _WGET_AGENT))
        reply, problem = await self._send(request, request.method or "GET")
        if reply is None:
            code, message = problem
            return CommandReply(stderr=f"wget: {message}\n", exit_code=8 if code == 22 else 4)
        if reply.status >= 400:
            return CommandReply(
                stderr=f"wget: server returned error: HTTP {reply.status} {reply.reason}\n", exit_code=8
            )
        name = output or posixpath.basename(reply.url.split("?")[0]) or "index.html"
        note = "" if quiet else f"HTTP request sent, awaiting response... {reply.status} {reply.reason}\n"
        if name == "-":
            return CommandReply(stdout=reply.body.decode(errors="replace"), stderr=note)
        try:
            self._files().write_file(resolve_path(name, call.cwd), reply.body)
        except (OSError, ValueError) as error:
            return CommandReply(stderr=f"wget: {name}: {error}\n", exit_code=3)
        return CommandReply(stderr="" if quiet else f"{note}'{name}' saved [{len(reply.body)}]\n")

    # --- http (HTTPie) -----------------------------------------------------------------------------

    async def http(self, call: CommandCall) -> CommandReply:
        request = _Request(timeout=60.0)
        positional: list[str] = []
        headers_only = verbose = check_status = False
        try:
            for option, take in _Args(call.argv, "http"):
                if option is None:
                    positional.append(take())
                elif option in ("-F", "--follow"):
                    request.follow = True
                elif option in ("-h", "--headers"):
                    headers_only = True
                elif option in ("-b", "--body"):
                    pass  # the body alone is what http prints into a pipe anyway
                elif option in ("-v", "--verbose"):
                    verbose = True
                elif option == "--check-status":
                    check_status = True
                elif option == "--timeout":
                    request.timeout = _number(take(), option, "http")
                else:
                    raise UsageError(f"http: error: unrecognized arguments: {option}")
            method, url, items = _httpie_parts(positional)
        except UsageError as error:
            return CommandReply(stderr=f"{error}\n", exit_code=2)
        request.url = url
        fields: dict[str, object] = {}
        query: list[str] = []
        for item in items:
            if "==" in item:
                query.append(item.replace("==", "=", 1))
            elif ":=" in item:
                key, raw = item.split(":=", 1)
                try:
                    fields[key] = json.loads(raw)
                except ValueError:
                    return CommandReply(stderr=f"http: error: {key}:={raw!r} is not JSON\n", exit_code=2)
            elif "=" in item and (":" not in item or item.index("=") < item.index(":")):
                key, value = item.split("=", 1)
                fields[key] = value
            elif ":" in item:
                request.headers.append(_header(item, "http"))
            else:
                return CommandReply(stderr=f"http: error: {item!r} is not a request item\n", exit_code=2)
        if query:
            request.url += ("&" if "?" in request.url else "?") + "&".join(query)
        if fields:
            request.body = json.dumps(fields).encode()
            request.headers += [
                ("Content-Type", "application/json"),
                ("Accept", "application/json, */*;q=0.5"),
            ]
        request.headers.append(("User-Agent", _HTTPIE_AGENT))
        reply, problem = await self._send(request, method or ("POST" if fields else "GET"))
        if reply is None:
            return CommandReply(stderr=f"http: error: {problem[1]}\n", exit_code=1)
        stdout = ""
        if verbose or headers_only:
            stdout += _status_block(reply)
        if not headers_only:
            stdout += reply.body.decode(errors="replace")
            if stdout and not stdout.endswith("\n"):
                stdout += "\n"
        exit_code = reply.status // 100 if check_status and reply.status >= 300 else 0
        return CommandReply(stdout=stdout, exit_code=exit_code)

    # --- shared ----------------------------------------------------------------------------------

    async def _send(self, request: _Request, method: str) -> tuple[Reply | None, tuple[int, str]]:
        """The reply, or (None, (curl's exit code, the message)) for a request that failed. A URL
        without a scheme is http, as curl and wget take it."""
        assert request.url is not None
        if "://" not in request.url:
            request.url = "http://" + request.url
        try:
            reply = await self._outbound.request(
                method,
                request.url,
                request.headers,
                request.body,
                follow=request.follow,
                max_redirects=request.max_redirects,
                timeout=request.timeout,
                max_body=self._max_body,
            )
        except Refused as error:
            return None, (7, str(error))
        except NetworkError as error:
            return None, (3, str(error))
        except TimedOut as error:
            return None, (28, str(error))
        except TooManyRedirects as error:
            return None, (47, str(error))
        except Unreachable as error:
            return None, (6 if "resolve" in str(error) else 7, str(error))
        return reply, (0, "")

    def _data(self, value: str, call: CommandCall) -> bytes:
        """A data argument: text, or `@file` (`@-` for stdin)."""
        if not value.startswith("@"):
            return value.encode()
        if value == "@-":
            return (call.stdin or "").encode()
        try:
            data = self._files().read_file(resolve_path(value[1:], call.cwd))
        except (OSError, ValueError) as error:
            raise UsageError(f"curl: (26) cannot read {value[1:]}: {error}") from None
        return data if isinstance(data, bytes) else data.encode()


class _Args:
    """Options and operands in order, GNU style: `-sSL`, `-oFILE`, `--opt=value`, `--`."""

    _NEED_VALUE = frozenset(
        [
            "-X",
            "--request",
            "-H",
            "--header",
            "-d",
            "--data",
            "--data-ascii",
            "--data-binary",
            "--data-raw",
            "--json",
            "-o",
            "--output",
            "-w",
            "--write-out",
            "-m",
            "--max-time",
            "--max-redirs",
            "-A",
            "--user-agent",
            "-u",
            "--user",
            "-O",
            "--output-document",
            "--post-data",
            "--body-data",
            "--method",
            "-T",
            "--timeout",
            "-U",
            "--max-redirect",
        ]
    )

    def __init__(self, argv: list[str], command: str) -> None:
        self._argv = argv
        self._command = command

    def __iter__(self) -> Iterator[tuple[str | None, Callable[[], str]]]:
        items = iter(self._argv)
        options_done = False
        for arg in items:
            if options_done or arg == "-" or not arg.startswith("-"):
                yield None, _value(arg)
            elif arg == "--":
                options_done = True
            elif arg.startswith("--"):
                name, has_value, value = arg.partition("=")
                yield name, _value(value) if has_value else self._next(items, name)
            else:
                letters = arg[1:]
                for index, letter in enumerate(letters):
                    option = f"-{letter}"
                    if self._needs_value(option) and index + 1 < len(letters):
                        yield option, _value(letters[index + 1 :])
                        break
                    yield option, self._next(items, option)

    def _needs_value(self, option: str) -> bool:
        if self._command == "curl" and option == "-O":
            return False  # curl's -O takes no value; wget's does
        return option in self._NEED_VALUE

    def _next(self, items: Iterator[str], option: str) -> Callable[[], str]:
        def take() -> str:
            try:
                return next(items)
            except StopIteration:
                raise UsageError(f"{self._command}: option {option}: requires a value") from None

        return take


def _value(text: str) -> Callable[[], str]:
    return lambda: text


def _header(text: str, command: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip() or any(char in text for char in "\r\n\0"):
        raise UsageError(f"{command}: {text!r} is not a header (Name: value)")
    return name.strip(), value.strip()


def _number(text: str, option: str, command: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"{command}: option {option}: expected a number, not {text!r}") from None
    if not number > 0:
        raise UsageError(f"{command}: option {option}: expected a positive number, not {text!r}")
    return number


_METHODS = frozenset(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])


def _httpie_parts(positional: list[str]) -> tuple[str | None, str, list[str]]:
    if not positional:
        raise UsageError("http: error: the following arguments are required: URL")
    method = None
    if positional[0].upper() in _METHODS and len(positional) > 1:
        method, positional = positional[0].upper(), positional[1:]
    url = positional[0]
    if url.startswith(":"):  # HTTPie's shorthand for localhost
        url = "localhost" + url
    if "://" not in url:
        url = "http://" + url
    return method, url, positional[1:]


def _status_block(reply: Reply) -> str:
    version = {"HTTP/1.1": "HTTP/1.1", "HTTP/2": "HTTP/2", "HTTP/1.0": "HTTP/1.0"}.get(
        reply.http_version, "HTTP/1.1"
    )
    lines = [f"{version} {reply.status} {reply.reason}".rstrip()]
    lines += [f"{name}: {value}" for name, value in reply.headers]
    return "\r\n".join(lines) + "\r\n\r\n"


def _write_out(template: str, reply: Reply) -> str:
    values = {
        "http_code": str(reply.status),
        "response_code": str(reply.status),
        "url_effective": reply.url,
        "content_type": dict((k.lower(), v) for k, v in reply.headers).get("content-type", ""),
        "size_download": str(len(reply.body)),
        "num_redirects": str(len(reply.hops)),
    }
    text = template.replace("\\n", "\n").replace("\\t", "\t")
    for name, value in values.items():
        text = text.replace("%{" + name + "}", value)
    return text
