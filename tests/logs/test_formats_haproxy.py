"""HAProxy httplog, httpslog and tcplog lines from the sample logs."""

from __future__ import annotations

from datetime import UTC, datetime

DOC = "haproxy/haproxy-doc-configuration-txt-examples.log"


def test_httplog_doc_example(read_sample):
    _, rows = read_sample(DOC)
    row = rows[3]
    assert row["lb"] == "haproxy-http"
    assert row["frontend"] == "http-in"
    assert row["pool"] == "static"
    assert row["server"] == "srv1"
    assert row["status"] == 200
    assert row["upstream_status"] == 200
    assert row["time_queue_ms"] == 0
    assert row["time_connect_ms"] == 30
    assert row["time_response_ms"] == 69
    assert row["time_total_ms"] == 109
    assert row["bytes"] == 2750
    assert row["client_ip"] == "10.0.1.2"
    assert row["client_port"] == 33317
    assert row["method"] == "GET"
    assert row["path"] == "/index.html"
    assert row["query"] is None
    assert row["protocol"] == "HTTP/1.1"
    assert row["captured_request_headers"] == ["1wt.eu"]
    assert row["ts"] == datetime(2009, 2, 6, 12, 14, 14, 655000, tzinfo=UTC)
    assert row["lb_error"] is False


def test_httpslog_fields_after_request(read_sample):
    _, rows = read_sample(DOC)
    assert rows[4]["frontend"] == "https-in"
    assert rows[4]["path"] == "/index.html"
    assert rows[4]["protocol"] == "HTTP/1.1"


def test_tcplog_line(read_sample):
    _, rows = read_sample(DOC)
    row = rows[2]
    assert row["lb"] == "haproxy-tcp"
    assert row["server"] == "srv1"
    assert row["status"] is None
    assert row["time_total_ms"] == 5007
    assert row["retries"] == 3
    assert row["redispatched"] is False
    assert row["method"] is None


def test_logasap_and_absolute_uri(read_sample):
    _, rows = read_sample(DOC)
    row = rows[6]
    assert row["time_total_ms"] == 162
    assert row["bytes"] == 350
    assert row["host"] == "fr.adserver.yahoo.com"
    assert row["path"] == "/"
    assert row["protocol"] is None
    assert row["ts"] == datetime(2004, 8, 9, 20, 26, 9, tzinfo=UTC)


def test_nosrv_and_unreached_timers(read_sample):
    _, rows = read_sample(DOC)
    aborted = rows[13]
    assert aborted["server"] is None
    assert aborted["status"] is None
    assert aborted["time_queue_ms"] is None
    assert aborted["time_total_ms"] == 8490
    assert aborted["lb_error"] is True
    assert aborted["termination"] == "CR--"
    refused = rows[16]
    assert refused["server"] == "srv1"
    assert refused["status"] == 503
    assert refused["upstream_status"] is None
    assert refused["time_connect_ms"] is None
    assert refused["lb_error"] is True


def test_query_string_split(read_sample):
    _, rows = read_sample(DOC)
    assert rows[12]["path"] == "/cgi-bin/bug.cgi"
    assert rows[12]["query"] == ""
    assert rows[12]["termination"] == "PH--"


def test_events_are_skipped_not_malformed(read_sample):
    load, rows = read_sample(DOC)
    stats = load.files[0]
    assert stats.lines == 16
    assert stats.parsed == 14
    assert stats.skipped == 2
    assert stats.malformed == 0
    assert 1 not in rows
    assert 5 not in rows


def test_header_capture_shapes(read_sample):
    _, rows = read_sample("haproxy/beats-filebeat-haproxy-httplog-no-headers.log")
    assert rows[1]["captured_request_headers"] is None
    assert rows[2]["captured_request_headers"] == ["localhost:8888", "", ""]
    assert rows[3]["captured_request_headers"] == ["localhost:8888", "", ""]
    assert rows[3]["path"] == "/foo"


def test_captured_headers_with_spaces(read_sample):
    load, rows = read_sample("haproxy/lnav-test-logfile_haproxy.log")
    row = rows[4]
    assert row["captured_request_headers"][0].startswith("Mozilla/5.0 (Windows NT 6.1;")
    assert row["path"] == "/admin/colt/administration"
    assert row["query"].startswith("survey=130&")
    assert load.files[0].skipped == 4


def test_rfc5424_prefix_and_address_server(read_sample):
    _, rows = read_sample("haproxy/github-haproxy-ingress-pr278-rfc5424.log")
    assert rows[1]["server"] == "10.244.13.99:8000"
    assert rows[1]["client_ip"] == "10.244.5.0"
    assert rows[1]["frontend"] == "httpfront-shared-frontend"


def test_no_syslog_prefix(read_sample):
    load, rows = read_sample("haproxy/crowdsec-hub-haproxy-logs.log")
    assert rows[1]["server"] == "xxx_node_8002"
    assert rows[1]["termination"] == "--NN"
    assert rows[2]["time_response_ms"] == 1263
    assert load.files[0].skipped == 3


def test_timezone_option_shifts_local_dates(read_sample):
    _, rows = read_sample(DOC, timezone="Europe/Paris")
    assert rows[3]["ts"] == datetime(2009, 2, 6, 11, 14, 14, 655000, tzinfo=UTC)


def test_custom_log_format_lines_are_malformed(read_sample):
    load, rows = read_sample("haproxy/beats-filebeat-haproxy-httplog.log")
    stats = load.files[0]
    assert stats.parsed == 1
    assert stats.malformed == 9
    assert [sample.line for sample in stats.samples] == [2, 3, 4, 5, 6]
    assert stats.samples[0].text.startswith("May 22 02:22:22 server1")
    assert rows[1]["server"] == "docs"
