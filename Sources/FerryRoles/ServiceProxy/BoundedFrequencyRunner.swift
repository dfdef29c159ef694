/// kube-proxy's bounded-frequency runner (`pkg/util/async`), which every service-proxy mode syncs with: a
/// change asks for a sync, which runs at once unless the last one began less than `minInterval` ago (then
/// as soon as that much time has passed), and a sync runs at least `maxInterval` after the last one ended
/// even without a change (the periodic resync). Changes are looked for every 100 ms, or every
/// `minInterval` when that is shorter.
struct BoundedFrequencyRunner: Sendable {
    var minInterval: Duration
    var maxInterval: Duration

    var checkInterval: Duration { min(minInterval, .milliseconds(100)) }

    /// Runs until the task is cancelled. `changed` says whether anything changed since it was last asked;
    /// `sync` gets `periodic: true` when the period, not a change, is the reason (a change waiting then is
    /// synced by it too). `between` runs at every check (work that is due by time, not by change).
    func run(changed: () -> Bool, sync: (_ periodic: Bool) -> Void, between: () -> Void = {}) async {
        let clock = ContinuousClock()
        var lastStart = clock.now - maxInterval
        var lastEnd = lastStart
        var pending = false
        while !Task.isCancelled {
            if changed() { pending = true }
            let now = clock.now
            let periodic = now - lastEnd >= maxInterval
            if (pending && now - lastStart >= minInterval) || periodic {
                pending = false
                sync(periodic)
                lastStart = now
                lastEnd = clock.now
            }
            between()
            try? await Task.sleep(for: checkInterval)
        }
    }
}
