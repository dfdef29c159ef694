extension StringProtocol where SubSequence == Substring {
    /// Without leading and trailing spaces and tabs.
    public var trimmingSpaces: Substring {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }

    /// Without one pair of enclosing brackets (`[::1]` → `::1`).
    var withoutBrackets: Substring {
        if hasPrefix("["), hasSuffix("]") { return self[...].dropFirst().dropLast() }
        return self[...]
    }
}
