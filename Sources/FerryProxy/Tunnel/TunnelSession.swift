import FerryModel
import NIOCore

/// Two connections on one event loop becoming one byte tunnel — after a `101`, after a CONNECT's `200`, and
/// for every connection of a TCP listener: one path for the three (as swift-nio-examples' `connect-proxy`
/// glues its two channels). Both channels pass a half-close on; the bytes read before the tunnel existed
/// are replayed to the upstream first; the handlers that spoke HTTP step aside (a decoder's unread bytes flow
/// on into the glue); when the client's side closes, the access-log line is written with the bytes each way
/// and the whole duration, and whatever the tunnel held is released.
struct TunnelSession {
    /// The access-log line a tunnel writes when it closes.
    struct LogLine {
        var event: AccessLogEvent
        var format: AccessLogSettings.Format
        var writer: AccessLogWriter
        var startedAt: NIODeadline
    }

    let downstream: Channel
    let upstream: Channel
    /// Bytes the client sent before the upstream was connected, and whether its input had already ended.
    var early: [ByteBuffer] = []
    var clientEnded = false
    var log: LogLine?
    /// Run once when the tunnel closes (connection counts, balancer counts, drain tracking).
    var onClose: [() -> Void] = []
    /// Whether a read was held back while the upstream was reached: the glue, which reads from now on, is owed it.
    var owesRead = false

    /// Installs the glue, replays the early bytes, then lets `stepAside` take the handlers that are done off
    /// the two pipelines. Any failure closes both channels.
    func start(stepAside: (_ downstream: ChannelPipeline.SynchronousOperations, _ upstream: ChannelPipeline.SynchronousOperations) throws -> Void) {
        let (downstreamGlue, upstreamGlue) = GlueHandler.matchedPair()
        // A tunnel passes a half-close on (the glue shuts the other side's output): each channel must report
        // the end of its input instead of closing at once.
        try? downstream.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        try? upstream.syncOptions?.setOption(.allowRemoteHalfClosure, value: true)
        var actions = onClose
        if let log {
            let loop = downstream.eventLoop
            // The early bytes went to the upstream directly, not through the glue: they count too.
            let earlyBytes = early.reduce(0) { $0 + $1.readableBytes }
            // Strong captures: the cycle through `onClose` ends when it runs (the glue clears it).
            actions.append {
                var event = log.event
                event.bytesReceived += earlyBytes + downstreamGlue.bytesRead
                event.bytesSent += upstreamGlue.bytesRead
                event.durationNanos = (loop.now - log.startedAt).nanoseconds
                log.writer.record(event, format: log.format)
            }
        }
        if !actions.isEmpty { downstreamGlue.onClose = { for action in actions { action() } } }
        do {
            let down = downstream.pipeline.syncOperations
            let up = upstream.pipeline.syncOperations
            try up.addHandler(upstreamGlue)
            try down.addHandler(downstreamGlue)
            if !early.isEmpty {
                for buffer in early { upstream.write(buffer, promise: nil) }
                upstream.flush()
            }
            if clientEnded { upstream.close(mode: .output, promise: nil) }
            try stepAside(down, up)
            if owesRead { downstream.read() }
        } catch {
            upstream.close(promise: nil)
            downstream.close(promise: nil)
        }
    }
}
