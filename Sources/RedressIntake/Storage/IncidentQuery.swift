public import Foundation
public import RedressSchemas

/// Filters and position for listing one tenant's incidents, newest first.
public struct IncidentQuery: Sendable, Hashable {
  /// Where the previous page ended: the last incident's receipt time and id.
  public struct Cursor: Sendable, Hashable, Codable {
    /// Receipt time of the last incident returned, in milliseconds since 1970.
    public var receivedAtMilliseconds: Int64
    /// Id of the last incident returned; breaks ties in receipt time.
    public var incidentID: String

    /// A cursor after the incident `incidentID` received at `receivedAtMilliseconds`.
    public init(receivedAtMilliseconds: Int64, incidentID: String) {
      self.receivedAtMilliseconds = receivedAtMilliseconds
      self.incidentID = incidentID
    }
  }

  /// Only this tenant's incidents are listed.
  public var tenant: String
  /// Empty means any; values combine with OR.
  public var statuses: [Redress_V1_IncidentStatus] = []
  /// Empty means any; values combine with OR.
  public var priorities: [Redress_V1_Priority] = []
  /// Empty means any; values combine with OR.
  public var categories: [Redress_V1_Category] = []
  /// Empty means any.
  public var customerID: String = ""
  /// Inclusive.
  public var receivedAfter: Date?
  /// Exclusive.
  public var receivedBefore: Date?
  /// At most this many incidents.
  public var pageSize: Int
  /// Continue after this position; `nil` for the first page.
  public var after: Cursor?

  /// The first page of `tenant`'s incidents, unfiltered.
  public init(tenant: String, pageSize: Int) {
    self.tenant = tenant
    self.pageSize = pageSize
  }
}
