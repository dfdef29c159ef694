import FerryModel
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Collects rendered access-log lines from the event loops and writes them to a file descriptor
/// (stdout by default) on a thread of its own, so no event loop ever blocks on the terminal or a pipe.
public final class AccessLogWriter: Sendable {
    /// Lines beyond this many buffered bytes are dropped (and counted) rather than stall the proxy.
    static let maxBufferedBytes = 8 * 1024 * 1024

    private struct State {
        var buffer: [UInt8] = []
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    private let wakeUp = ConditionLock<Int>(value: 0)
    private let fd: Int32
    private let metrics: ProxyMetrics?
    private let thread = NIOLockedValueBox<pthread_t?>(nil)
    private let done = ConditionLock<Int>(value: 0)

    public init(fd: Int32 = 1, metrics: ProxyMetrics? = nil) {
        self.fd = fd
        self.metrics = metrics
    }

    /// Starts the writer thread.
    public func start() {
        let writer = Unmanaged.passRetained(self)
        var tid = pthread_t()
        pthread_create(&tid, nil, { arg in
            #if canImport(Darwin)
            let w = Unmanaged<AccessLogWriter>.fromOpaque(arg).takeRetainedValue()
            #else
            let w = Unmanaged<AccessLogWriter>.fromOpaque(arg!).takeRetainedValue()
            #endif
            w.run()
            return nil
        }, writer.toOpaque())
        pthread_detach(tid)
    }

    /// Appends an event; never blocks on I/O.
    public func record(_ event: AccessLogEvent, format: AccessLogSettings.Format) {
        guard format != .none else { return }
        var line: [UInt8] = []
        line.reserveCapacity(384)
        AccessLogFormatter.render(event, format: format, into: &line)
        let wasEmpty: Bool? = state.withLockedValue { s in
            if s.buffer.count + line.count > AccessLogWriter.maxBufferedBytes { return nil }
            let empty = s.buffer.isEmpty
            s.buffer.append(contentsOf: line)
            return empty
        }
        switch wasEmpty {
        case nil: metrics?.accessLogDropped.increment()
        case true?:
            wakeUp.lock()
            wakeUp.unlock(withValue: 1)
        case false?: break
        }
    }

    /// What is buffered and not yet written (for tests of a writer that was never started).
    func bufferedText() -> String {
        state.withLockedValue { String(decoding: $0.buffer, as: UTF8.self) }
    }

    /// Writes what is buffered and stops the thread.
    public func stop() {
        state.withLockedValue { $0.stopped = true }
        wakeUp.lock()
        wakeUp.unlock(withValue: 1)
        // Wait (bounded) until the thread has written what was left.
        if done.lock(whenValue: 1, timeoutSeconds: 2) { done.unlock() }
    }

    private func run() {
        while true {
            // A timed-out wait does not hold the lock.
            if wakeUp.lock(whenValue: 1, timeoutSeconds: 1) {
                wakeUp.unlock(withValue: 0)
            }
            let (bytes, stopped) = state.withLockedValue { s -> ([UInt8], Bool) in
                let b = s.buffer
                s.buffer.removeAll(keepingCapacity: true)
                return (b, s.stopped)
            }
            writeAll(bytes)
            if stopped {
                done.lock()
                done.unlock(withValue: 1)
                return
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        var offset = 0
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
