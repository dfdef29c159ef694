import Foundation

/// Reads manifests from files and folders (folders recursively: `*.yaml`, `*.yml`, `*.json`, in name order).
public enum ManifestLoader {
    static let extensions: Set<String> = ["yaml", "yml", "json"]

    /// Every manifest file under `paths`, sorted within each folder. A missing path is an error.
    public static func files(under paths: [String]) throws -> [String] {
        var result: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ManifestError([ManifestDiagnostic(file: path, document: 0, object: "", line: nil, field: "", message: "no such file or folder")])
            }
            if !isDirectory.boolValue {
                result.append(path)
                continue
            }
            guard let walker = fm.enumerator(atPath: path) else { continue }
            var found: [String] = []
            while let relative = walker.nextObject() as? String {
                let name = (relative as NSString).lastPathComponent
                if name.hasPrefix(".") {
                    walker.skipDescendants()  // hidden files and folders (editor swap files, ..data of ConfigMaps)
                    continue
                }
                if extensions.contains((name as NSString).pathExtension.lowercased()) {
                    found.append((path as NSString).appendingPathComponent(relative))
                }
            }
            result += found.sorted()
        }
        return result
    }

    /// Reads and decodes every manifest under `paths`; all problems of all files in one error.
    public static func load(paths: [String]) throws -> ManifestSet {
        var set = ManifestSet()
        var diagnostics: [ManifestDiagnostic] = []
        for file in try files(under: paths) {
            guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
                diagnostics.append(ManifestDiagnostic(file: file, document: 0, object: "", line: nil, field: "", message: "cannot read the file as UTF-8 text"))
                continue
            }
            do {
                set.merge(try ManifestDecoder.decode(text: text, file: file))
            } catch let error as ManifestError {
                diagnostics += error.diagnostics
            }
        }
        if !diagnostics.isEmpty { throw ManifestError(diagnostics) }
        return set
    }

    /// What identifies the current contents of `paths`: each manifest file's name, size, modification time
    /// and inode, so an edit, an added or a removed file changes it.
    public static func stamp(paths: [String]) -> [String] {
        let found = (try? files(under: paths)) ?? []
        return found.map { file in
            var info = stat()
            guard stat(file, &info) == 0 else { return file }
            return "\(file) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec) \(info.st_ino)"
        } + paths.filter { !FileManager.default.fileExists(atPath: $0) }.map { "missing \($0)" }
    }
}
