"""``hyperpy serve`` options and interface detection, checked in this process."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from pathlib import Path
from typing import Any

import pytest
from apps.running import Served

import hyperpy
from hyperpy import ServerLimits
from hyperpy._cli import _parser
from hyperpy._cli.errors import UsageError
from hyperpy._cli.interface import detect, load_app
from hyperpy._cli.serve_args import ServeConfig, to_config


def config(*args: str, env: dict[str, str] | None = None) -> ServeConfig:
    return to_config(_parser().parse_args(["serve", *args]), environ=env or {})


def refused(*args: str) -> str:
    """The UsageError message for ``serve ARGS``."""
    with pytest.raises(UsageError) as caught:
        config(*args)
    return str(caught.value)


def test_defaults() -> None:
    got = config()
    assert (got.host, got.port, got.uds, got.fd) == ("127.0.0.1", 8000, None, None)
    assert got.limits == ServerLimits()
    assert (got.workers, got.reload, got.graceful_timeout) == (None, False, 30.0)
    assert (got.http2, got.access_log, got.proxy_headers) == (True, True, False)
    assert (got.interface, got.lifespan, got.forwarded_allow_ips) == ("auto", "auto", "127.0.0.1")


def test_every_server_limit_has_a_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["serve", "--help"])
    text = capsys.readouterr().out
    for field in dataclasses.fields(ServerLimits):
        assert "--" + field.name.replace("_", "-") in text


def test_limits_from_flags() -> None:
    got = config(
        "--max-connections",
        "10",
        "--keep-alive-timeout",
        "none",
        "--header-read-timeout",
        "2.5",
        "--max-head-bytes",
        "4096",
        "--max-workers",
        "8",
    )
    assert got.limits == ServerLimits(
        max_connections=10,
        keep_alive_timeout=None,
        header_read_timeout=2.5,
        max_head_bytes=4096,
        max_workers=8,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--max-connections", "0"],
        ["--max-connections", "many"],
        ["--keep-alive-timeout", "0"],
        ["--write-timeout", "-1"],
        ["--body-read-timeout", "inf"],
        ["--port", "70000"],
        ["--workers", "0"],
        ["--graceful-timeout", "soon"],
        ["--interface", "cgi"],
        ["--log-level", "loud"],
    ],
)
def test_invalid_values_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["serve", *args])
    assert exited.value.code == 2
    assert "error: argument" in capsys.readouterr().err


def test_aliases_other_servers_use() -> None:
    got = config(
        "--timeout-keep-alive",
        "7",
        "--ssl-certfile",
        "c.pem",
        "--ssl-keyfile",
        "k.pem",
        "--timeout-graceful-shutdown",
        "3",
        "-w",
        "4",
    )
    assert got.limits.keep_alive_timeout == 7.0
    assert (got.certfile, got.keyfile, got.graceful_timeout, got.workers) == (
        "c.pem",
        "k.pem",
        3.0,
        4,
    )


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("0.0.0.0:9000", ("0.0.0.0", 9000, None, None)),
        ("[::1]:9001", ("::1", 9001, None, None)),
        ("localhost", ("localhost", 8000, None, None)),
        ("unix:/tmp/app.sock", ("127.0.0.1", 8000, "/tmp/app.sock", None)),
        ("fd://3", ("127.0.0.1", 8000, None, 3)),
    ],
)
def test_bind(bind: str, expected: tuple[Any, ...]) -> None:
    got = config("--bind", bind)
    assert (got.host, got.port, got.uds, got.fd) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bind", "0.0.0.0:1", "--port", "2"], "give --bind or --host/--port/--uds/--fd"),
        (["--bind", "host:port"], "not a port number"),
        (["--uds", "/tmp/s", "--fd", "3"], "give --uds or --fd, not both"),
        (["--uds", "/tmp/s", "--port", "1"], "--uds and --fd replace --host/--port"),
        (["--keyfile", "k.pem"], "--keyfile needs --certfile"),
        (["--reload", "--workers", "2"], "--reload runs a single worker"),
        (["--reload-dir", "src"], "--reload-dir needs --reload"),
    ],
)
def test_clashing_options(args: list[str], message: str) -> None:
    assert message in refused(*args)


def test_environment_defaults() -> None:
    env = {"WEB_CONCURRENCY": "3", "FORWARDED_ALLOW_IPS": "10.0.0.0/8,unix"}
    got = config(env=env)
    assert (got.workers, got.forwarded_allow_ips) == (3, "10.0.0.0/8,unix")
    got = config("--workers", "2", "--forwarded-allow-ips", "*", env=env)
    assert (got.workers, got.forwarded_allow_ips) == (2, "*")
    assert config("--reload", env=env).workers is None
    with pytest.raises(UsageError, match="WEB_CONCURRENCY"):
        config(env={"WEB_CONCURRENCY": "lots"})


# -- interface detection ------------------------------------------------------------------


async def asgi(scope: Any, receive: Any, send: Any) -> None: ...


async def native(request: Any) -> Any: ...


def wsgi(environ: Any, start_response: Any) -> Any: ...


def native_sync(request: Any) -> Any: ...


class ASGIApp:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


class WSGIApp:
    def __call__(self, environ: Any, start_response: Any) -> Any: ...


class NativeApp:
    async def __call__(self, request: Any) -> Any: ...


async def asgi2(scope: Any, receive: Any) -> None: ...


async def either(request: Any, receive: Any = None, send: Any = None) -> None: ...


def wsgi_with_defaults(environ: Any, start_response: Any, extra: Any = None) -> Any: ...


def needs_keyword(request: Any, *, config: Any) -> Any: ...


class FlaskLike:
    """Takes one or two arguments, but says it is WSGI with ``wsgi_app``."""

    def wsgi_app(self, environ: Any, start_response: Any) -> Any: ...

    def __call__(self, environ: Any, start_response: Any = None) -> Any: ...


@pytest.mark.parametrize(
    ("app", "kind", "threads", "reason"),
    [
        (asgi, "asgi", False, "async callable taking scope, receive, send"),
        (ASGIApp(), "asgi", False, "async callable taking scope, receive, send"),
        (functools.partial(asgi), "asgi", False, "async callable taking scope, receive, send"),
        (native, "hyperpy", False, "async callable taking request"),
        (NativeApp(), "hyperpy", False, "async callable taking request"),
        (wsgi, "wsgi", True, "callable taking environ, start_response"),
        (WSGIApp(), "wsgi", True, "callable taking environ, start_response"),
        (wsgi_with_defaults, "wsgi", True, "callable taking environ, start_response"),
        (native_sync, "hyperpy", True, "callable taking request"),
        (lambda request: None, "hyperpy", True, "callable taking request"),
        (FlaskLike(), "wsgi", True, "callable taking environ, start_response"),
    ],
)
def test_detected(app: Any, kind: str, threads: bool, reason: str) -> None:
    found = detect(app, "m:app")
    assert (found.kind, found.threads, found.reason) == (kind, threads, reason)


def test_real_frameworks_are_detected() -> None:
    flask = detect(load_app("tests.apps.flask_app:app"), "flask")
    starlette = detect(load_app("tests.apps.starlette_app:app"), "starlette")
    assert (flask.kind, flask.threads) == ("wsgi", True)
    assert (starlette.kind, starlette.threads) == ("asgi", False)


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (either, "could take 1 or 3 arguments (hyperpy or ASGI)"),
        (asgi2, "an ASGI 2 app? only ASGI 3 is served"),
        (lambda *args: None, "could take 1 or 2 arguments (hyperpy or WSGI)"),
        (lambda a, b, c: None, "if it is an ASGI app, pass --interface asgi"),
        (needs_keyword, "takes no 1, 2 or 3 positional arguments"),
        (ASGIApp, "is a class"),
        (max, "cannot read the signature"),
    ],
)
def test_undetectable(app: Any, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        detect(app, "m:app")
    assert message in str(caught.value)


def test_forced_interfaces() -> None:
    assert detect(either, "m:app", "asgi").kind == "asgi"
    assert detect(either, "m:app", "hyperpy").threads is False
    assert detect(lambda *args: None, "m:app", "hyperpy").threads is True
    assert detect(native, "m:app", "wsgi").threads is True
    assert detect(native_sync, "m:app", sync=True).threads is True


def test_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "factory_app.py").write_text(
        "def create():\n    async def app(request):\n        pass\n    return app\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    app = load_app("factory_app:create", factory=True)
    assert detect(app, "factory_app:create").kind == "hyperpy"
    assert app.__name__ == "app"


def test_an_app_module_that_fails_to_import(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_here\n")
    with Served(["broken:app"], cwd=tmp_path, wait=False) as server:
        assert server.wait() == 2
    # The traceback shows where, the last line says what.
    assert "Traceback" in server.stderr.text
    assert server.stderr.text.splitlines()[-1].startswith("error: cannot import 'broken'")


def test_ini_log_config(tmp_path: Path) -> None:
    (tmp_path / "logging.ini").write_text(
        "[loggers]\nkeys=root,access\n\n"
        "[handlers]\nkeys=out\n\n"
        "[formatters]\nkeys=tagged\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_access]\nlevel=INFO\nhandlers=out\npropagate=0\nqualname=hyperpy.access\n\n"
        "[handler_out]\nclass=StreamHandler\nformatter=tagged\nargs=(sys.stdout,)\n\n"
        "[formatter_tagged]\nformat=INI %(message)s\n"
    )
    args = ["tests.apps.slow:app", "--port", "0", "--log-config", str(tmp_path / "logging.ini")]
    with Served(args) as server:
        with hyperpy.Client() as client:
            client.get(server.url + "/x")
        assert server.stdout.wait_for(r'^INI 127\.0\.0\.1 - - \[.*\] "GET /x HTTP/1\.1" 200', 5)


@pytest.mark.skipif(importlib.util.find_spec("yaml") is not None, reason="PyYAML is installed")
def test_yaml_log_config_needs_pyyaml(tmp_path: Path) -> None:
    (tmp_path / "logging.yaml").write_text("version: 1\n")
    args = ["tests.apps.slow:app", "--log-config", str(tmp_path / "logging.yaml")]
    with Served(args, wait=False) as server:
        assert server.wait() == 2
    assert "YAML needs PyYAML: pip install pyyaml" in server.stderr.text
