"""Defaults the real server adds to built-ins, so comparing rendered with stored objects meets them too."""

import kubernetes


def test_deployment_and_pod_template_defaults(api_client):
    apps = kubernetes.client.AppsV1Api(api_client)
    body = {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1.0", "ports": [{"containerPort": 80}]},
                                {"name": "edge", "image": "registry.example/edge"}]}}}}
    created = apps.create_namespaced_deployment("default", body)
    spec = created.spec
    assert (spec.replicas, spec.revision_history_limit, spec.progress_deadline_seconds) == (1, 10, 600)
    assert spec.strategy.type == "RollingUpdate" and spec.strategy.rolling_update.max_surge == "25%"
    pod = spec.template.spec
    assert (pod.restart_policy, pod.dns_policy, pod.termination_grace_period_seconds) == ("Always",
                                                                                          "ClusterFirst", 30)
    assert [c.image_pull_policy for c in pod.containers] == ["IfNotPresent", "Always"]
    assert pod.containers[0].ports[0].protocol == "TCP"
    # Sending the same manifest again changes nothing: the defaults are already there.
    again = apps.patch_namespaced_deployment("web", "default", body)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_service_cluster_ip_and_node_ports_survive_updates(core):
    body = {"metadata": {"name": "jvb"}, "spec": {"type": "NodePort", "selector": {"app": "jvb"},
                                                  "ports": [{"name": "media", "port": 10000, "protocol": "UDP"}]}}
    created = core.create_namespaced_service("default", body)
    spec = created.spec
    assert spec.cluster_ip.startswith("10.96.") and spec.cluster_ips == [spec.cluster_ip]
    port = spec.ports[0]
    assert port.target_port == 10000 and 30000 <= port.node_port <= 32767
    replaced = core.replace_namespaced_service("jvb", "default", {**body, "metadata": {
        "name": "jvb", "labels": {"changed": "yes"}}})
    assert replaced.spec.cluster_ip == spec.cluster_ip and replaced.spec.ports[0].node_port == port.node_port
