import Foundation
import RedressSchemas
import SwiftProtobuf

/// A valid report: a standard customer's wrong item raised by email, an hour before `now` (a fixed date by
/// default, so equal calls give equal reports).
func validReport(
  customerID: String = "cust-1",
  title: String = "Blue mug shipped instead of red",
  now: Date = Date(timeIntervalSince1970: 1_790_000_000),
  configure: (inout Redress_V1_IncidentReport) -> Void = { _ in }
) -> Redress_V1_IncidentReport {
  var report = Redress_V1_IncidentReport.with {
    $0.customer = .with {
      $0.id = customerID
      $0.name = "Ada Customer"
      $0.tier = .standard
    }
    $0.title = title
    $0.description_p = "Order 1234 contained the wrong colour."
    $0.category = .wrongItem
    $0.channel = .email
    $0.demand = .with {
      $0.text = "Send the right mug."
      $0.amount = .with {
        $0.currency = "USD"
        $0.amountMinor = 1_500
      }
    }
    $0.occurredAt = Google_Protobuf_Timestamp(date: now.addingTimeInterval(-3600))
    $0.links = ["https://shop.example/orders/1234"]
    $0.labels = ["mugs", "batch:42"]
  }
  configure(&report)
  return report
}

/// A submit request for `report` with `key`.
func submitRequest(_ key: String, _ report: Redress_V1_IncidentReport) -> Redress_V1_SubmitIncidentRequest {
  .with {
    $0.idempotencyKey = key
    $0.report = report
  }
}
