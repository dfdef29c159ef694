import NIOCore

/// Where a field of a head read as bytes lies: its name, and its value without the blanks around it, as
/// offsets in the head's bytes.
struct HTTP1Field {
    var name: Range<Int>
    var value: Range<Int>
}

/// What request and response heads read as bytes share (`HTTP1RequestHeadView`, `HTTP1ResponseHeadView`):
/// the received bytes of the head (a slice of the read, validated by `HTTP1Parser`) and where each field
/// lies in them. No `String` is made for a field until something asks.
protocol HTTP1HeadView {
    /// The whole head, first line to the empty line.
    var bytes: ByteBuffer { get }
    var fields: [HTTP1Field] { get }
    /// Where the first field line starts in `bytes`.
    var fieldsStart: Int { get }
}

extension HTTP1HeadView {
    /// Each field's name and value bytes, in order.
    @inline(__always)
    func forEachField(_ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { raw in
            for f in fields {
                body(UnsafeRawBufferPointer(rebasing: raw[f.name]), UnsafeRawBufferPointer(rebasing: raw[f.value]))
            }
        }
    }

    /// The field lines as received, each ending in CRLF, without the empty line that ends the head.
    var fieldLines: ByteBuffer {
        bytes.getSlice(at: bytes.readerIndex + fieldsStart, length: bytes.readableBytes - fieldsStart - 2)!
    }

    /// The first value of the field named `name` (any case), as a `String`.
    func value(of name: String) -> String? {
        bytes.withUnsafeReadableBytes { raw in
            for f in fields where HTTP1Grammar.equalsIgnoringCase(UnsafeRawBufferPointer(rebasing: raw[f.name]), name) {
                return String(decoding: UnsafeRawBufferPointer(rebasing: raw[f.value]), as: UTF8.self)
            }
            return nil
        }
    }
}
