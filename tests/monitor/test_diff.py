"""Semantic diff of parsed HAProxy configurations, and ``lbguard diff``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from monitor_support import DEFAULTS, haproxy_config

from lbguard.model import LoadBalancer
from lbguard.monitor.diff import Change, ChangeKind, Element, diff_configs, diff_models
from lbguard.monitor.shares import share_table
from lbguard.parsers import load_config
from lbguard.predict import predict

LBGUARD = Path(sys.executable).with_name("lbguard")

ROUTED = (
    DEFAULTS
    + """
frontend fe_main
    bind 127.0.0.1:8080
    acl is_api path_beg /api
    acl is_any path_beg /
    use_backend be_api if is_api
    use_backend be_web if is_any
    default_backend be_web

backend be_web
    balance roundrobin
    server web1 127.0.0.1:9001
    server web2 127.0.0.1:9002

backend be_api
    balance roundrobin
    server api1 127.0.0.1:9004
    server api2 127.0.0.1:9005
"""
)

NGINX = """\
events {}
http {
    upstream be_web {
        server 127.0.0.1:9001;
        server 127.0.0.1:9002 weight=3;
    }
    upstream be_api {
        hash $request_uri consistent;
        server 127.0.0.1:9004;
        server 127.0.0.1:9005;
    }
    server {
        listen 8080;
        root /srv/www;
        location /api/ {
            proxy_pass http://be_api;
        }
        location / {
            try_files $uri @app;
        }
        location @app {
            proxy_pass http://be_web;
        }
    }
}
"""

TRAFFIC = 'requests: 10000\npaths: {"/": 0.5, "/api/v1/items": 0.5}\n'


def parse(tmp_path: Path, name: str, text: str) -> LoadBalancer:
    path = tmp_path / name
    path.write_text(text)
    return load_config([path])


def only(changes: tuple[Change, ...]) -> Change:
    assert len(changes) == 1, changes
    return changes[0]


def test_weight_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", haproxy_config())
    new = parse(tmp_path, "new.cfg", haproxy_config(w3=100))

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.CHANGED
    assert change.element is Element.SERVER
    assert change.subject == "be_web/web3"
    assert change.attribute == "weight"
    assert (change.before, change.after) == ("10", "100")
    assert str(change.location) == f"{tmp_path / 'new.cfg'}:15"


def test_weight_change_impact(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", haproxy_config())
    new = parse(tmp_path, "new.cfg", haproxy_config(w3=100))
    diff = diff_configs(old, new, share_table(predict(old)), share_table(predict(new)))

    top = diff.impact[0]
    assert top.key == "be_web/web3"
    assert top.before_of_pool == pytest.approx(1 / 3)
    assert top.after_of_pool == pytest.approx(100 / 120)
    assert top.points == pytest.approx(50.0)
    assert [delta.key for delta in diff.impact[1:]] == ["be_web/web1", "be_web/web2"]


def test_reformatting_is_no_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", haproxy_config())
    reformatted = "# reviewed\n" + haproxy_config().replace("    server", "\tserver  ")
    new = parse(tmp_path, "new.cfg", reformatted)

    assert diff_models(old, new) == ()


def test_rule_reorder(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    swapped = ROUTED.replace(
        "    use_backend be_api if is_api\n    use_backend be_web if is_any\n",
        "    use_backend be_web if is_any\n    use_backend be_api if is_api\n",
    )
    new = parse(tmp_path, "new.cfg", swapped)

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.REORDERED
    assert change.element is Element.RULE
    assert change.describe() == (
        "fe_main rule 2 `use_backend be_api if is_api` moved from position 1 to position 2"
    )


def test_rule_reorder_impact_of_all_traffic(tmp_path: Path) -> None:
    (tmp_path / "traffic.yaml").write_text(TRAFFIC)
    from lbguard.traffic import load_profile

    profile = load_profile(tmp_path / "traffic.yaml")
    old = parse(tmp_path, "old.cfg", ROUTED)
    swapped = ROUTED.replace(
        "    use_backend be_api if is_api\n    use_backend be_web if is_any\n",
        "    use_backend be_web if is_any\n    use_backend be_api if is_api\n",
    )
    new = parse(tmp_path, "new.cfg", swapped)
    diff = diff_configs(
        old, new, share_table(predict(old, profile)), share_table(predict(new, profile))
    )

    assert diff.route_level_known
    impact = {delta.key: delta for delta in diff.impact}
    assert impact["be_web/web1"].before_of_total == pytest.approx(0.25)
    assert impact["be_web/web1"].after_of_total == pytest.approx(0.5)
    assert impact["be_api/api1"].after_of_total == pytest.approx(0.0)


def test_rule_added_and_removed(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    new = parse(
        tmp_path,
        "new.cfg",
        ROUTED.replace("    use_backend be_api if is_api\n", "").replace(
            "    default_backend be_web\n",
            "    use_backend be_api if { path_beg /v2 }\n    default_backend be_web\n",
        ),
    )

    described = [change.describe() for change in diff_models(old, new)]
    assert described == [
        "fe_main rule 1 removed: use_backend be_api if is_api",
        "fe_main rule 2 added: use_backend be_api if { path_beg /v2 }",
    ]


def test_acl_redefinition(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    new = parse(tmp_path, "new.cfg", ROUTED.replace("path_beg /api", "path_beg /api /v2"))

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.CHANGED
    assert change.element is Element.ACL
    assert change.subject == "fe_main acl is_api"
    assert change.before is not None
    assert change.after is not None
    assert "/v2" in change.after
    assert "/v2" not in change.before


def test_rule_target_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    new = parse(
        tmp_path,
        "new.cfg",
        ROUTED.replace("use_backend be_api if is_api", "use_backend be_web if is_api"),
    )

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.CHANGED
    assert change.element is Element.RULE
    assert change.before == "use_backend be_api if is_api"
    assert change.after == "use_backend be_web if is_api"


def test_pool_and_server_changes(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    edited = (
        ROUTED.replace("    server web2 127.0.0.1:9002\n", "    server web3 127.0.0.1:9003\n")
        .replace("backend be_api\n    balance roundrobin", "backend be_api\n    balance source")
        .replace("server api2 127.0.0.1:9005", "server api2 127.0.0.1:9005 backup")
        + "\nbackend be_new\n    server n1 127.0.0.1:9030\n"
    )
    new = parse(tmp_path, "new.cfg", edited)

    described = {change.describe() for change in diff_models(old, new)}
    assert "server be_web/web2 removed: 127.0.0.1:9002" in described
    assert "server be_web/web3 added: 127.0.0.1:9003 weight 1" in described
    assert "balance be_api: algorithm roundrobin → source" in described
    assert "server be_api/api2: backup off → on" in described
    assert any(text.startswith("pool be_new added") for text in described)


def test_hash_settings_and_state(tmp_path: Path) -> None:
    base = ROUTED.replace(
        "backend be_api\n    balance roundrobin",
        "backend be_api\n    balance uri\n    hash-type map-based",
    )
    old = parse(tmp_path, "old.cfg", base)
    new = parse(
        tmp_path,
        "new.cfg",
        base.replace("hash-type map-based", "hash-type consistent")
        .replace("server api1 127.0.0.1:9004", "server api1 127.0.0.1:9004 disabled")
        .replace("server web1 127.0.0.1:9001", "server web1 127.0.0.1:9001 check"),
    )

    changes = diff_models(old, new)
    described = {change.describe() for change in changes}
    assert "balance be_api: hash-type map-based sdbm → consistent sdbm avalanche" in described
    assert "server be_api/api1: state enabled → disabled" in described
    assert "server be_web/web1: check off → on" in described
    hash_type = next(change for change in changes if change.attribute == "hash-type")
    # The hash-type line, not the balance line above it.
    assert str(hash_type.new_location) == f"{tmp_path / 'new.cfg'}:22"
    assert str(hash_type.old_location) == f"{tmp_path / 'old.cfg'}:22"


def test_server_order_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", haproxy_config())
    lines = haproxy_config().splitlines(keepends=True)
    reordered = "".join([*lines[:-3], lines[-1], lines[-3], lines[-2]])
    new = parse(tmp_path, "new.cfg", reordered)

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.REORDERED
    assert change.element is Element.POOL
    assert change.after == "web3, web1, web2"


def run_diff(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LBGUARD), "diff", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "old.cfg").write_text(haproxy_config())
    (tmp_path / "new.cfg").write_text(haproxy_config(w3=100))

    unchanged = run_diff(tmp_path / "old.cfg", tmp_path / "old.cfg")
    changed = run_diff(tmp_path / "old.cfg", tmp_path / "new.cfg")
    missing = run_diff(tmp_path / "old.cfg", tmp_path / "absent.cfg")

    assert unchanged.returncode == 0
    assert "no semantic change" in unchanged.stdout
    assert changed.returncode == 1
    assert "be_web/web3: 33.3 % → 83.3 % of be_web" in changed.stdout
    assert "server be_web/web3: weight 10 → 100" in changed.stdout
    assert missing.returncode == 2
    assert "absent.cfg" in missing.stderr


def test_cli_json_and_markdown(tmp_path: Path) -> None:
    (tmp_path / "old.cfg").write_text(ROUTED)
    (tmp_path / "new.cfg").write_text(
        ROUTED.replace("server web2 127.0.0.1:9002", "server web2 127.0.0.1:9002 weight 3")
    )
    (tmp_path / "traffic.yaml").write_text(TRAFFIC)

    as_json = run_diff(
        tmp_path / "old.cfg",
        tmp_path / "new.cfg",
        "--traffic",
        tmp_path / "traffic.yaml",
        "--format",
        "json",
    )
    markdown = run_diff(tmp_path / "old.cfg", tmp_path / "new.cfg", "--format", "markdown")

    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["changed"] is True
    assert data["route_level_known"] is True
    assert data["changes"][0]["subject"] == "be_web/web2"
    assert data["changes"][0]["new_location"].endswith("new.cfg:18")
    web2 = next(item for item in data["impact"] if item["server"] == "web2")
    assert web2["share_of_pool_after"] == pytest.approx(0.75)
    assert web2["share_of_total_after"] == pytest.approx(0.375)
    assert markdown.returncode == 1
    assert "| `be_web/web2` | 50.0 % | 75.0 % |" in markdown.stdout


def test_rule_condition_edited_in_place(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", ROUTED)
    new = parse(
        tmp_path,
        "new.cfg",
        ROUTED.replace(
            "use_backend be_api if is_api", "use_backend be_api if is_api || { path_beg /v2 }"
        ),
    )

    change = only(diff_models(old, new))
    assert change.kind is ChangeKind.CHANGED
    assert change.subject == "fe_main rule 1"
    assert change.before == "use_backend be_api if is_api"
    assert change.after == "use_backend be_api if is_api || { path_beg /v2 }"


def test_nginx_copy_is_no_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "a.conf", NGINX)
    new = parse(tmp_path, "b.conf", NGINX)

    assert diff_models(old, new) == ()


def test_nginx_comment_only_edit_is_no_change(tmp_path: Path) -> None:
    old = parse(tmp_path, "nginx.conf", NGINX)
    edited = tmp_path / "edited"
    edited.mkdir()
    commented = "# reviewed\n# by the edge team\n" + NGINX.replace(
        "        location /api/ {", "        # the API\n        location /api/ {"
    )
    new = parse(edited, "nginx.conf", commented)

    assert diff_models(old, new) == ()


def test_nginx_change_keeps_new_line(tmp_path: Path) -> None:
    old = parse(tmp_path, "a.conf", NGINX)
    new = parse(tmp_path, "b.conf", "# moved\n" + NGINX.replace("weight=3", "weight=5"))

    change = only(diff_models(old, new))
    assert change.describe() == "server be_web/127.0.0.1:9002: weight 3 → 5"
    assert str(change.location) == f"{tmp_path / 'b.conf'}:6"


def test_added_backup_server_says_backup(tmp_path: Path) -> None:
    old = parse(tmp_path, "old.cfg", haproxy_config())
    new = parse(
        tmp_path,
        "new.cfg",
        haproxy_config() + "    server spare 127.0.0.1:9009 backup\n",
    )

    change = only(diff_models(old, new))
    assert change.describe() == "server be_web/spare added: 127.0.0.1:9009 weight 1 backup"


def write_nginx_folder(folder: Path, weight: int) -> None:
    (folder / "conf.d").mkdir(parents=True)
    (folder / "nginx.conf").write_text("events {}\nhttp {\n    include conf.d/*.conf;\n}\n")
    (folder / "conf.d" / "app.conf").write_text(
        "upstream be_app {\n"
        "    server 127.0.0.1:9001;\n"
        f"    server 127.0.0.1:9002 weight={weight};\n"
        "}\n"
        "server {\n    listen 8080;\n    location / {\n        proxy_pass http://be_app;\n"
        "    }\n}\n"
    )


def test_cli_nginx_folders(tmp_path: Path) -> None:
    write_nginx_folder(tmp_path / "old", 1)
    write_nginx_folder(tmp_path / "new", 4)
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "app.conf").write_text(NGINX)

    changed = run_diff(tmp_path / "old", tmp_path / "new")
    bare = run_diff(tmp_path / "old", tmp_path / "bare")

    assert changed.returncode == 1, changed.stderr
    assert "server be_app/127.0.0.1:9002: weight 1 → 4" in changed.stdout
    assert "open() failed" not in changed.stderr
    assert bare.returncode == 2
    assert f"{tmp_path / 'bare'} contains nginx files but no nginx.conf" in bare.stderr


def test_cli_rejects_what_it_cannot_compare(tmp_path: Path) -> None:
    (tmp_path / "base.cfg").write_text(haproxy_config())
    (tmp_path / "empty.cfg").write_text("")
    (tmp_path / "nginx.conf").write_text(NGINX)
    (tmp_path / "broken.conf").write_text("events {}\nhttp {\n    server {\n")

    empty = run_diff(tmp_path / "base.cfg", tmp_path / "empty.cfg")
    products = run_diff(tmp_path / "base.cfg", tmp_path / "nginx.conf")
    wrong_product = run_diff("--product", "nginx", tmp_path / "base.cfg", tmp_path / "base.cfg")
    broken = run_diff(tmp_path / "nginx.conf", tmp_path / "broken.conf")

    assert empty.returncode == 2
    assert "nothing to compare in" in empty.stderr
    assert "no frontend and no pool" in empty.stderr
    assert products.returncode == 2
    assert "OLD and NEW are different products" in products.stderr
    assert wrong_product.returncode == 2
    assert "nothing to compare in" in wrong_product.stderr
    assert broken.returncode == 2
    assert "broken.conf:" in broken.stderr
    assert "no semantic change" not in broken.stdout + broken.stderr


def test_cli_product_choices(tmp_path: Path) -> None:
    (tmp_path / "base.cfg").write_text(haproxy_config())

    envoy = run_diff("--product", "envoy", tmp_path / "base.cfg", tmp_path / "base.cfg")
    usage = run_diff("--help")

    assert envoy.returncode == 2
    assert "invalid choice: 'envoy'" in envoy.stderr
    assert "{haproxy,nginx}" in usage.stdout


def test_cli_redacts_secrets(tmp_path: Path) -> None:
    secured = haproxy_config().replace(
        "    balance roundrobin\n",
        "    balance roundrobin\n    stats auth admin:OLDSECRET\n"
        '    http-check send hdr Authorization "Basic b2xkc2VjcmV0"\n',
    )
    (tmp_path / "old.cfg").write_text(secured)
    (tmp_path / "new.cfg").write_text(
        secured.replace("OLDSECRET", "NEWSECRET").replace("weight 10\n", "weight 20\n", 1)
    )

    text = run_diff(tmp_path / "old.cfg", tmp_path / "new.cfg")
    as_json = run_diff(tmp_path / "old.cfg", tmp_path / "new.cfg", "--format", "json")

    assert text.returncode == 1
    assert "weight 10 → 20" in text.stdout
    for output in (text.stdout + text.stderr, as_json.stdout + as_json.stderr):
        assert "OLDSECRET" not in output
        assert "NEWSECRET" not in output
        assert "b2xkc2VjcmV0" not in output
