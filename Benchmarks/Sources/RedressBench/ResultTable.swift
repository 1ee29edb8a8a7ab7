import Foundation

/// One line of the final table; every cell already formatted.
struct ResultRow: Sendable {
  var cells: [String]

  static let header = [
    "scenario", "transport", "conns", "in flight", "rate", "p50 ms", "p99 ms", "p99.9 ms",
    "rate ÷ HTTP/2", "p99 ÷ HTTP/2", "rate ÷ floor",
  ]

  static func latency(
    scenario: String, transport: String, connections: Int, inFlight: Int,
    result: LoadResult, unit: String, against http2: LoadResult?, floor: LoadResult?
  ) -> ResultRow {
    ResultRow(cells: [
      scenario, transport, "\(connections)", "\(inFlight)",
      "\(grouped(result.perSecond)) \(unit)",
      millis(result.percentileMillis(50)), millis(result.percentileMillis(99)), millis(result.percentileMillis(99.9)),
      http2.map { ratio(result.perSecond / $0.perSecond) } ?? "",
      http2.map { ratio(result.percentileMillis(99) / $0.percentileMillis(99)) } ?? "",
      floor.map { percent(result.perSecond / $0.perSecond) } ?? "",
    ])
  }

  static func streaming(
    scenario: String, transport: String, streams: Int, result: LoadResult, messageSize: Int, against http2: LoadResult?
  ) -> ResultRow {
    let mibPerSecond = result.perSecond * Double(messageSize) / 1_048_576
    return ResultRow(cells: [
      scenario, transport, "1", "\(streams) streams",
      "\(grouped(result.perSecond)) msg/s (\(grouped(mibPerSecond)) MiB/s)",
      "", "", "",
      http2.map { ratio(result.perSecond / $0.perSecond) } ?? "", "", "",
    ])
  }

  static func intake(backend: String, clients: Int, connections: Int, result: DurableIntake.Result) -> ResultRow {
    let load = result.load
    return ResultRow(cells: [
      "durable intake, \(backend)", "Redress", "\(connections)", "\(clients)",
      "\(grouped(load.perSecond)) submit/s (\(String(format: "%.1f", result.meanBatch)) per commit)",
      millis(load.percentileMillis(50)), millis(load.percentileMillis(99)), millis(load.percentileMillis(99.9)),
      "", "", "",
    ])
  }

  static func memory(transport: String, result: IdleMemory.Result, against http2: IdleMemory.Result?) -> ResultRow {
    ResultRow(cells: [
      "idle memory", transport, "\(result.connections)", "0",
      String(format: "%.1f KiB/conn (RSS %d → %d MiB)", result.perConnectionKiB, result.baselineKiB / 1024, result.loadedKiB / 1024),
      "", "", "",
      http2.map { ratio(result.perConnectionKiB / $0.perConnectionKiB) } ?? "", "", "",
    ])
  }

  private static func grouped(_ value: Double) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    return formatter.string(from: NSNumber(value: value.rounded())) ?? "\(Int(value))"
  }

  private static func millis(_ value: Double) -> String { String(format: "%.3f", value) }
  private static func ratio(_ value: Double) -> String { value.isFinite ? String(format: "%.2f×", value) : "–" }
  private static func percent(_ value: Double) -> String { value.isFinite ? String(format: "%.0f %%", value * 100) : "–" }
}

/// The one table the command prints at the end, in Markdown so it pastes into docs/BENCHMARKS.md.
struct ResultTable {
  var rows: [ResultRow] = []

  func render(title: String) -> String {
    let all = [ResultRow.header] + self.rows.map(\.cells)
    var widths = [Int](repeating: 0, count: ResultRow.header.count)
    for row in all {
      for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
      "| " + cells.enumerated().map { index, cell in
        cell + String(repeating: " ", count: widths[index] - cell.count)
      }.joined(separator: " | ") + " |"
    }
    var lines = ["", title, "", line(ResultRow.header)]
    lines.append("|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|")
    lines += self.rows.map { line($0.cells) }
    return lines.joined(separator: "\n")
  }
}
