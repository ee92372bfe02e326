import Foundation

/// `face2webtoon report`: one self-contained HTML page for a result folder (inline SVG plots, images embedded as
/// data URIs, no network access): losses, KID over steps and wall-clock, ADA strength p and r_t, group accuracies,
/// seconds per step and lr, the sample grids over time (a slider), the configuration and the checkpoints.
/// Reads what is there, so it works on a running job; only rank 0 writes these files, so a multi-rank run reads
/// the same as a one-rank run.
public enum RunReport {
    /// The largest number of sample grids embedded per kind (evenly spaced over the run, newest always kept).
    public static let maxGrids = 40

    /// - Throws: `MonitoringError.badInput` when `resultDir` has no metrics.jsonl.
    /// - Returns: the page, and a one-line summary (rows, plots, grids).
    public static func html(resultDir: String) throws -> (page: String, summary: String) {
        let metricsPath = "\(resultDir)/metrics.jsonl"
        guard let data = FileManager.default.contents(atPath: metricsPath) else {
            throw MonitoringError.badInput(
                path: metricsPath, reason: "no metrics.jsonl: is this a result folder of `face2webtoon train`?")
        }
        var rows: [[String: Any]] = []
        for line in data.split(separator: 0x0A) {
            // a running job may be writing the last line
            if let o = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], o["step"] is Int {
                rows.append(o)
            }
        }
        func series(_ key: String, x: String = "step", scale: Double = 1) -> SVGPlot.Series {
            var pts: [(Double, Double)] = []
            for r in rows {
                guard let xv = (r[x] as? NSNumber)?.doubleValue else { continue }
                if let v = r[key] as? NSNumber {
                    pts.append((xv * scale, v.doubleValue))
                } else if r.keys.contains(key) {
                    pts.append((xv * scale, .nan))
                }  // null: a non-finite value
            }
            return SVGPlot.Series(name: key, points: pts)
        }
        let keys = Set(rows.flatMap { $0.keys.filter { k in rows.contains { ($0[k] as? NSNumber) != nil } } })
        var plots: [String] = []
        func plot(
            _ title: String, _ names: [String], x: String = "step", xLabel: String = "step", scale: Double = 1,
            smoothing: Double = 0.6, spread: String? = nil
        ) {
            var s = names.sorted().map { series($0, x: x, scale: scale) }.filter { !$0.points.isEmpty }
            guard !s.isEmpty else { return }
            if let spread, s.count == 1 { s[0].spread = series(spread, x: x, scale: scale).points.map(\.y) }
            var p = SVGPlot(title: title, xLabel: xLabel, series: s, smoothing: smoothing)
            p.logY = SVGPlot.wantsLog(s)
            plots.append(p.render())
        }
        plot("Discriminator losses", keys.filter { $0.hasPrefix("d.") && !$0.contains("acc") && !$0.contains("group") })
        let g = keys.filter { $0.hasPrefix("g.") && !$0.contains("acc") }
        plot("Generator losses", g.filter { !$0.contains("group") })
        plot("Group losses", keys.filter { $0.contains("group") && !$0.contains("acc") && $0 != "group" })
        plot("KID over steps (± kid_std)", keys.contains("kid") ? ["kid"] : [], smoothing: 0, spread: "kid_std")
        plot(
            "KID over wall-clock (± kid_std)", keys.contains("kid") ? ["kid"] : [], x: "elapsed_seconds",
            xLabel: "hours of training", scale: 1 / 3600, smoothing: 0, spread: "kid_std")
        plot("ADA strength p", keys.filter { $0.hasPrefix("ada.p") }, smoothing: 0)
        plot("ADA overfitting heuristic r_t", keys.filter { $0.hasPrefix("ada.rt") }, smoothing: 0)
        plot("Group accuracies", keys.filter { $0.contains("acc") }, smoothing: 0.6)
        plot("Seconds per step", keys.filter { $0 == "seconds_per_step" || $0 == "data_wait_seconds" })
        plot("Learning rate", keys.contains("lr") ? ["lr"] : [], smoothing: 0)

        var html = """
            <!doctype html><html><head><meta charset="utf-8"><title>face2webtoon report: \(esc(resultDir))</title>
            <style>body{font-family:sans-serif;margin:20px;max-width:1300px} .plots{display:flex;flex-wrap:wrap;gap:12px}
            .plot{border:1px solid #ddd} img.grid{image-rendering:pixelated;max-width:100%;border:1px solid #ddd}
            table{border-collapse:collapse} td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}
            pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px}</style></head><body>
            <h1>face2webtoon run: \(esc((resultDir as NSString).lastPathComponent))</h1>

            """
        let last = rows.last
        let step = (last?["step"] as? Int) ?? 0
        html += "<p>\(rows.count) steps logged, last step \(step)"
        if let e = (last?["elapsed_seconds"] as? NSNumber)?.doubleValue {
            html += String(format: ", %.2f hours of training", e / 3600)
        }
        if let k = rows.last(where: { $0["kid"] is NSNumber }), let v = (k["kid"] as? NSNumber)?.doubleValue {
            html += String(format: ", last KID %.4f at step %d", v, k["step"] as? Int ?? 0)
        }
        html += ". Written \(ISO8601DateFormatter().string(from: Date())) from \(esc(resultDir)).</p>\n"
        html += "<h2>Curves</h2><div class=\"plots\">" + plots.joined(separator: "\n") + "</div>\n"

        var grids = 0
        html += "<h2>Sample grids</h2>\n"
        for kind in ["A2B", "B2A", "augmented"] {
            let files = sampleFiles(resultDir, kind)
            guard !files.isEmpty else { continue }
            let chosen = evenly(files, maxGrids)
            grids += chosen.count
            let id = "grid_\(kind)"
            html +=
                "<h3>\(kind)</h3><div><input type=\"range\" min=\"0\" max=\"\(chosen.count - 1)\" value=\"\(chosen.count - 1)\" "
            html +=
                "oninput=\"show('\(id)',this.value)\" style=\"width:400px\"> <span id=\"\(id)_label\">step \(chosen.last!.step)</span></div>\n"
            for (i, f) in chosen.enumerated() {
                let b64 = (FileManager.default.contents(atPath: f.path) ?? Data()).base64EncodedString()
                html += "<img class=\"grid \(id)\" data-step=\"\(f.step)\" alt=\"\(kind) step \(f.step)\" "
                html +=
                    "style=\"display:\(i == chosen.count - 1 ? "block" : "none")\" src=\"data:image/png;base64,\(b64)\">\n"
            }
        }
        if grids == 0 { html += "<p>no sample grids yet (samples/*.png)</p>\n" }
        html += """
            <script>function show(id,i){var im=document.getElementsByClassName(id);for(var k=0;k<im.length;k++)
            im[k].style.display=(k==i)?'block':'none';document.getElementById(id+'_label').textContent='step '+im[i].dataset.step;}
            window.addEventListener('load',function(){var s=document.querySelectorAll('input[type=range]');
            for(var k=0;k<s.length;k++){var id=s[k].getAttribute('oninput').split("'")[1];show(id,0);show(id,s[k].max);}
            var bad=[].filter.call(document.images,function(im){return !(im.naturalWidth>0);}).length;
            console.log('report-self-check plots='+document.querySelectorAll('svg.plot').length+' images='+document.images.length+' broken='+bad);});</script>

            """
        html += "<h2>Configuration</h2>"
        if let c = try? String(contentsOfFile: "\(resultDir)/config.json", encoding: .utf8) {
            html += "<pre>\(esc(prettyJSON(c)))</pre>\n"
        } else {
            html += "<p>no config.json</p>\n"
        }
        html += "<h2>Checkpoints</h2>" + checkpointTable(resultDir)
        html += "</body></html>\n"
        return (html, "\(rows.count) rows, \(plots.count) plots, \(grids) sample grids")
    }

    struct SampleFile {
        var path: String
        var step: Int
    }

    static func sampleFiles(_ resultDir: String, _ kind: String) -> [SampleFile] {
        let dir = "\(resultDir)/samples"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { n -> SampleFile? in
            guard n.hasPrefix("\(kind)_"), n.hasSuffix(".png"), let s = Int(n.dropFirst(kind.count + 1).dropLast(4))
            else { return nil }
            return SampleFile(path: "\(dir)/\(n)", step: s)
        }.sorted { $0.step < $1.step }
    }

    /// At most `n` items, evenly spaced, first and last kept.
    static func evenly<T>(_ a: [T], _ n: Int) -> [T] {
        guard a.count > n, n >= 2 else { return a }
        return (0..<n).map { a[Int((Double($0) * Double(a.count - 1) / Double(n - 1)).rounded())] }
    }

    static func prettyJSON(_ s: String) -> String {
        guard let o = try? JSONSerialization.jsonObject(with: Data(s.utf8)),
            let d = try? JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys]),
            let t = String(data: d, encoding: .utf8)
        else { return s }
        return t
    }

    static func checkpointTable(_ resultDir: String) -> String {
        let root = "\(resultDir)/checkpoints"
        let fm = FileManager.default
        let names = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("step_") }.sorted()
        guard !names.isEmpty else { return "<p>no checkpoints yet</p>\n" }
        let latest = (try? String(contentsOfFile: "\(root)/LATEST", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var t = "<table><tr><th>checkpoint</th><th>files</th><th>MB</th><th></th></tr>"
        for n in names {
            let files = (try? fm.contentsOfDirectory(atPath: "\(root)/\(n)")) ?? []
            let bytes = files.reduce(0) { s, f in
                s + (((try? fm.attributesOfItem(atPath: "\(root)/\(n)/\(f)"))?[.size] as? NSNumber)?.intValue ?? 0)
            }
            t += "<tr><td>\(esc(n))</td><td>\(files.count)</td><td>\(String(format: "%.1f", Double(bytes) / 1e6))</td>"
            t += "<td>\(n == latest ? "LATEST" : "")</td></tr>"
        }
        return t + "</table>\n"
    }
}
