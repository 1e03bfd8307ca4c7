"""nginx, AWS, Envoy, Traefik and Caddy samples: concrete values of specific lines."""

from __future__ import annotations


def test_ingress_multi_upstream_lists(read_sample):
    _, rows = read_sample("nginx/beats-filebeat-ingress-nginx-upstreaminfo.log")
    row = rows[23]
    assert row["lb"] == "ingress-nginx"
    assert row["pool"] == "default-web2-8080"
    assert row["attempts"] == ["172.17.0.6:8080", "172.17.0.7:8080"]
    assert row["attempt_statuses"] == [200, 203]
    assert row["server"] == "172.17.0.7:8080"
    assert row["upstream_status"] == 203
    assert row["time_response_ms"] == 4
    assert row["retries"] == 1
    dashed = rows[29]
    assert dashed["attempt_statuses"] == [200, None]
    assert dashed["upstream_status"] is None


def test_ingress_ipv6_and_unix_upstreams(read_sample):
    _, rows = read_sample("nginx/beats-filebeat-ingress-nginx-upstreaminfo.log")
    assert rows[25]["server"] == "[2001:db8::]:9200"
    assert rows[25]["client_ip"] == "2001:db8::"
    assert rows[28]["server"] == "unix:/var/run/php-fpm.sock"
    assert rows[5]["server"] is None
    assert rows[5]["attempts"] is None


def test_nginx_combined_variants(read_sample):
    load, rows = read_sample("nginx/crowdsec-hub-nginx_http-logs.log")
    stats = load.files[0]
    assert stats.parsed == 7
    assert stats.malformed == 1
    assert stats.samples[0].line == 8
    assert stats.skipped == 1
    assert rows[3]["query"] == "wt=json"
    assert rows[4]["host"] == "www.crowdsec.net"
    assert rows[1]["status"] == 404
    assert rows[1]["bytes"] == 522


def test_nginx_xff_field(read_sample):
    _, rows = read_sample("nginx/vrl-parse_nginx_log-tests.log")
    assert rows[9]["forwarded_for"] == "192.0.2.30"
    assert rows[4]["forwarded_for"] is None


def test_ingress_retry_after_502(read_sample):
    _, rows = read_sample("nginx/github-issues-multi-upstream.log")
    assert rows[2]["attempt_statuses"] == [502, 502, 200]
    assert rows[2]["server"] == "10.0.0.3:443"
    assert rows[2]["host"] == "some.domain"
    assert rows[1]["time_total_ms"] == 143855


def test_alb_fields(read_sample):
    _, rows = read_sample("aws-alb/crowdsec-hub-aws-alb-logs.log")
    row = rows[2]
    assert row["server"] == "10.0.0.1:80"
    assert row["status"] == 200
    assert row["time_response_ms"] == 48
    assert row["client_ip"] == "192.168.1.11"
    assert row["host"] == "www.example.com:443"
    assert row["path"] == "/robots.txt"
    assert row["attempts"] == ["10.0.0.1:80"]
    waf = rows[4]
    assert waf["server"] is None
    assert waf["lb_error"] is True
    assert waf["time_total_ms"] is None


def test_alb_unquoted_lists_and_lambda(read_sample):
    _, rows = read_sample("aws-alb/awsdocs-alb-user-guide-examples.log")
    assert rows[1]["attempt_statuses"] == [200]
    assert rows[7]["status"] == 502
    assert rows[7]["termination"] == "LambdaInvalidResponse"
    assert rows[7]["lb_error"] is True


def test_classic_elb_tcp_listener(read_sample):
    _, rows = read_sample("aws-elb-classic/awsdocs-clb-user-guide-examples.log")
    assert rows[1]["server"] == "10.0.0.1:80"
    assert rows[3]["method"] is None
    assert rows[3]["status"] is None


def test_nlb_has_no_server(read_sample):
    _, rows = read_sample("aws-nlb/awsdocs-nlb-user-guide-examples.log")
    assert rows[1]["server"] is None
    assert rows[1]["time_total_ms"] == 5
    assert rows[1]["client_ip"] == "198.51.100.40"


def test_envoy_default_and_istio(read_sample):
    _, rows = read_sample("envoy/envoy-docs-default-format-example.log")
    assert rows[1]["server"] == "10.0.2.1:80"
    assert rows[1]["status"] == 204
    assert rows[1]["time_total_ms"] == 226
    assert rows[1]["time_response_ms"] == 100
    assert rows[1]["forwarded_for"] == "10.0.35.28"
    _, istio = read_sample("envoy/istio-docs-envoy-access-log.log")
    assert istio[1]["pool"] == "outbound|8000||httpbin.foo.svc.cluster.local"
    assert istio[1]["server"] == "10.44.1.27:80"


def test_envoy_cri_json_and_text(read_sample):
    load, rows = read_sample("envoy/crowdsec-hub-envoy-logs.log")
    assert load.files[0].parsed == 10
    assert rows[1]["server"] == "10.42.0.82:8080"
    assert rows[1]["pool"] == "httproute/app/app-www-example-com/rule/0"
    assert rows[2]["server"] is None
    assert rows[9]["forwarded_for"] == "192.168.1.100"


def test_traefik_clf_and_json(read_sample):
    _, clf = read_sample("traefik/traefik-unit-tests-clf.log")
    assert clf[1]["server"] == "127.0.0.1"
    assert clf[1]["time_total_ms"] == 1
    assert clf[2]["server"] is None
    load, js = read_sample("traefik/crowdsec-hub-traefik-json.log")
    assert js[1]["server"] == "172.17.0.3:80"
    assert js[1]["pool"] == "test@docker"
    assert js[7]["forwarded_for"] == "192.168.1.100"
    assert js[5]["upstream_status"] is None
    assert load.files[0].samples[0].line == 6


def test_caddy_access_lines(read_sample):
    _, rows = read_sample("caddy/lnav-test-logfile_caddy_log.log")
    assert rows[1]["client_ip"] == "10.5.1.1"
    assert rows[1]["forwarded_for"] == "10.10.10.117"
    assert rows[1]["status"] == 200
    assert rows[1]["bytes"] == 3768
    _, other = read_sample("caddy/crowdsec-hub-caddy-logs.log")
    assert 11 not in other
    assert other[10]["status"] == 200
