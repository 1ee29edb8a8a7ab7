public import Foundation
public import RedressSchemas

/// Filters and position for listing one tenant's incidents, newest first.
public struct IncidentQuery: Sendable, Hashable {
  /// Where the previous page ended: the last incident's receipt time and id.
  public struct Cursor: Sendable, Hashable, Codable {
    public var receivedAtMilliseconds: Int64
    public var incidentID: String

    public init(receivedAtMilliseconds: Int64, incidentID: String) {
      self.receivedAtMilliseconds = receivedAtMilliseconds
      self.incidentID = incidentID
    }
  }

  public var tenant: String
  /// Empty means any; values combine with OR.
  public var statuses: [Redress_V1_IncidentStatus] = []
  public var priorities: [Redress_V1_Priority] = []
  public var categories: [Redress_V1_Category] = []
  /// Empty means any.
  public var customerID: String = ""
  /// Inclusive.
  public var receivedAfter: Date?
  /// Exclusive.
  public var receivedBefore: Date?
  public var pageSize: Int
  public var after: Cursor?

  public init(tenant: String, pageSize: Int) {
    self.tenant = tenant
    self.pageSize = pageSize
  }
}
