import NIOCore

/// What an intercepted connection's first bytes are: a TLS ClientHello (with the server name it asks for),
/// the start of an HTTP/1.x request, or something else — read without consuming them, since every byte
/// goes on to the original destination.
enum FirstBytes: Equatable {
    /// Not enough bytes yet to tell.
    case needMore
    /// A TLS ClientHello; `serverName` is its SNI host name (nil: the client sent none).
    case tls(serverName: String?)
    /// A request line starting with a method token: an HTTP/1.x request.
    case http
    /// Neither: decided on the address alone.
    case other
    /// A TLS record that is not a well-formed ClientHello.
    case malformedTLS(String)

    /// The longest ClientHello waited for (several records' worth; post-quantum key shares make it ~2 KB).
    static let maxClientHelloBytes = 64 * 1024

    static func classify(_ buffer: ByteBuffer) -> FirstBytes {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return .needMore }
        if first == 0x16 { return clientHello(buffer) }
        if first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z") { return requestLine(buffer) }
        return .other
    }

    /// An HTTP method is 1 to 20 capital letters (and `-`, `_`) followed by a space.
    private static func requestLine(_ buffer: ByteBuffer) -> FirstBytes {
        let view = buffer.readableBytesView
        for (offset, byte) in view.prefix(21).enumerated() {
            if byte == UInt8(ascii: " ") { return offset > 0 ? .http : .other }
            let isToken = (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            if !isToken { return .other }
        }
        return view.count > 20 ? .other : .needMore
    }

    /// Reads the handshake message carried by the first TLS records (RFC 8446 §5.1: a handshake message may
    /// span records) and, when it is a ClientHello, its `server_name` extension (RFC 6066 §3).
    private static func clientHello(_ buffer: ByteBuffer) -> FirstBytes {
        var records = buffer
        var handshake = ByteBuffer()
        while true {
            guard let type = records.readInteger(as: UInt8.self), let major = records.readInteger(as: UInt8.self),
                  records.readInteger(as: UInt8.self) != nil, let length = records.readInteger(as: UInt16.self) else { return .needMore }
            guard type == 0x16, major == 3 else { return handshake.readableBytes == 0 ? .other : .malformedTLS("a record that is not a handshake inside the ClientHello") }
            guard length > 0, length <= 16_384 + 256 else { return .malformedTLS("a record of \(length) bytes") }
            guard var payload = records.readSlice(length: Int(length)) else { return .needMore }
            handshake.writeBuffer(&payload)
            if handshake.readableBytes >= 4, let total = handshake.getInteger(at: 1, as: UInt32.self).map({ Int($0 >> 8) }) {
                guard handshake.getInteger(at: 0, as: UInt8.self) == 1 else { return .malformedTLS("the first handshake message is not a ClientHello") }
                guard total + 4 <= maxClientHelloBytes else { return .malformedTLS("a ClientHello of \(total) bytes") }
                if handshake.readableBytes >= total + 4 {
                    handshake.moveReaderIndex(forwardBy: 4)
                    return serverName(inClientHello: handshake.readSlice(length: total)!)
                }
            }
            if buffer.readableBytes > maxClientHelloBytes { return .malformedTLS("no complete ClientHello in \(maxClientHelloBytes) bytes") }
        }
    }

    private static func serverName(inClientHello body: ByteBuffer) -> FirstBytes {
        var body = body
        let broken = FirstBytes.malformedTLS("a ClientHello whose fields overrun it")
        // legacy_version, random
        guard body.readSlice(length: 2 + 32) != nil,
              let sessionLength = body.readInteger(as: UInt8.self), body.readSlice(length: Int(sessionLength)) != nil,
              let suitesLength = body.readInteger(as: UInt16.self), body.readSlice(length: Int(suitesLength)) != nil,
              let compressionLength = body.readInteger(as: UInt8.self), body.readSlice(length: Int(compressionLength)) != nil
        else { return broken }
        guard let extensionsLength = body.readInteger(as: UInt16.self) else { return .tls(serverName: nil) }  // no extensions at all
        guard var extensions = body.readSlice(length: Int(extensionsLength)) else { return broken }
        while extensions.readableBytes > 0 {
            guard let type = extensions.readInteger(as: UInt16.self), let length = extensions.readInteger(as: UInt16.self),
                  var data = extensions.readSlice(length: Int(length)) else { return broken }
            guard type == 0 else { continue }
            guard let listLength = data.readInteger(as: UInt16.self), var list = data.readSlice(length: Int(listLength)) else { return broken }
            while list.readableBytes > 0 {
                guard let nameType = list.readInteger(as: UInt8.self), let nameLength = list.readInteger(as: UInt16.self),
                      let name = list.readSlice(length: Int(nameLength)) else { return broken }
                guard nameType == 0 else { continue }
                let bytes = name.readableBytesView
                // A host name: LDH labels and dots, ASCII only (RFC 6066 forbids a trailing dot and IP literals do not belong here).
                guard !bytes.isEmpty, bytes.count <= 253, bytes.allSatisfy({ $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
                    || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "z")) })
                else { return .malformedTLS("a server name that is not a host name") }
                return .tls(serverName: String(decoding: bytes, as: UTF8.self).lowercased())
            }
            return .tls(serverName: nil)
        }
        return .tls(serverName: nil)
    }
}
