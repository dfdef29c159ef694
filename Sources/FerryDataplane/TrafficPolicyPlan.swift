import FerryModel

/// kube-proxy's traffic-policy decisions for one Service port, shared by the iptables and nftables
/// renderers: which endpoints each policy uses, which policy chains exist, and whether internal
/// (ClusterIP) and external (NodePort, external and load-balancer IPs) traffic has somewhere to go.
struct TrafficPolicyPlan {
    let clusterEndpoints: [ProxiedEndpoint]
    let localEndpoints: [ProxiedEndpoint]
    /// Some endpoint is usable on some node.
    let hasEndpoints: Bool
    /// ClusterIP traffic has an endpoint (false when internalTrafficPolicy is Local and none is local).
    let hasInternalEndpoints: Bool
    /// External traffic has an endpoint (false when externalTrafficPolicy is Local and none is local).
    let hasExternalEndpoints: Bool
    /// The Cluster-policy chain is written: some endpoint, and ClusterIP traffic uses it or the Service is
    /// reachable from outside (the short-circuit rules for pod and node traffic need it).
    let usesClusterChain: Bool
    /// The Local-policy chain is written.
    let usesLocalChain: Bool
    /// The external chain is written (needed for the short-circuit rules even without external endpoints).
    let usesExternalChain: Bool

    init(_ svc: ProxiedServicePort, node: String) {
        let (cluster, local, hasEndpoints) = svc.categorized(node: node)
        clusterEndpoints = cluster
        localEndpoints = local
        self.hasEndpoints = hasEndpoints
        usesClusterChain = !cluster.isEmpty && (!svc.internalTrafficLocal || svc.externallyAccessible)
        usesLocalChain = !local.isEmpty && (svc.internalTrafficLocal || (svc.externallyAccessible && svc.externalTrafficLocal))
        hasInternalEndpoints = hasEndpoints && !(svc.internalTrafficLocal && local.isEmpty)
        hasExternalEndpoints = hasEndpoints && !(svc.externalTrafficLocal && local.isEmpty)
        usesExternalChain = hasEndpoints && svc.externallyAccessible
    }

    /// Every endpoint a used policy chain can reach, each once: these get endpoint chains.
    var reachableEndpoints: [ProxiedEndpoint] {
        var seen = Set<ProxiedEndpoint>()
        return ((usesClusterChain ? clusterEndpoints : []) + (usesLocalChain ? localEndpoints : [])).filter { seen.insert($0).inserted }
    }
}
