"""Format detection for every sample log."""

from __future__ import annotations

import pytest

from lbguard.logs import load_logs
from lbguard.logs.detect import detect
from lbguard.logs.registry import formats
from lbguard.logs.sources import LogSource, head_lines

from .conftest import DATA

EXPECTED = {
    "aws-alb/awsdocs-alb-user-guide-examples.log": "aws-alb",
    "aws-alb/crowdsec-hub-aws-alb-logs.log": "aws-alb",
    "aws-alb/vrl-parse_aws_alb_log-tests.log": "aws-alb",
    "aws-elb-classic/awsdocs-clb-user-guide-examples.log": "aws-elb",
    "aws-nlb/awsdocs-nlb-user-guide-examples.log": "aws-nlb",
    "caddy/caddy-docs-logging-md-example.json.txt": "caddy",
    "caddy/crowdsec-hub-caddy-logs.log": "caddy",
    "caddy/lnav-test-logfile_caddy_log.log": "caddy",
    "envoy/crowdsec-hub-envoy-logs.log": "envoy",
    "envoy/envoy-docs-default-format-example.log": "envoy",
    "envoy/istio-docs-envoy-access-log.log": "envoy",
    "haproxy/beats-filebeat-haproxy-default.log": "haproxy",
    "haproxy/beats-filebeat-haproxy-httplog-no-headers.log": "haproxy",
    "haproxy/beats-filebeat-haproxy-httplog.log": "haproxy",
    "haproxy/beats-filebeat-haproxy-tcplog.log": "haproxy",
    "haproxy/crowdsec-hub-haproxy-logs.log": "haproxy",
    "haproxy/crowdsec-hub-haproxy-nextcloud.log": "haproxy",
    "haproxy/github-haproxy-ingress-pr278-rfc5424.log": "haproxy",
    "haproxy/haproxy-doc-configuration-txt-examples.log": "haproxy",
    "haproxy/lnav-test-logfile_haproxy.log": "haproxy",
    "nginx/beats-filebeat-ingress-nginx-upstreaminfo.log": "nginx",
    "nginx/crowdsec-hub-nginx_http-logs.log": "nginx",
    "nginx/github-issues-multi-upstream.log": "nginx",
    "nginx/vrl-parse_nginx_log-tests.log": "nginx",
    "traefik/crowdsec-hub-traefik-clf.log": "traefik-clf",
    "traefik/crowdsec-hub-traefik-json.log": "traefik-json",
    "traefik/traefik-unit-tests-clf.log": "traefik-clf",
}


def test_every_sample_is_listed():
    on_disk = {str(path.relative_to(DATA)) for path in DATA.rglob("*") if path.is_file()} - {
        "SOURCES.md"
    }
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize(("relative", "expected"), sorted(EXPECTED.items()))
def test_detects_sample_format(relative, expected):
    path = str(DATA / relative)
    lines = head_lines(LogSource(path, path, "none"), 50)
    result = detect(lines, formats())
    assert result.log_format is not None
    assert result.log_format.name == expected


def test_cri_prefix_detected():
    path = str(DATA / "envoy/crowdsec-hub-envoy-logs.log")
    result = detect(head_lines(LogSource(path, path, "none"), 50), formats())
    assert result.cri_prefix is True


def test_unknown_format_names_file_and_line(tmp_path):
    path = tmp_path / "odd.log"
    path.write_text("hello world\nsecond line\n")
    with pytest.raises(Exception, match=r"odd\.log") as caught:
        load_logs([str(path)])
    text = str(caught.value)
    assert "hello world" in text
    assert "--log-format" in text
    assert "haproxy" in text
