import Foundation
import RedressIntake
import RedressSchemas
import Testing

@Suite("Triage")
struct TriageTests {
  let triager = Triager(policy: .defaults)

  @Test(
    "priority follows the impact × urgency matrix",
    arguments: [
      (Redress_V1_Level.high, Redress_V1_Level.high, Redress_V1_Priority.p1),
      (.high, .medium, .p2), (.high, .low, .p3),
      (.medium, .high, .p2), (.medium, .medium, .p3), (.medium, .low, .p4),
      (.low, .high, .p3), (.low, .medium, .p4), (.low, .low, .p4),
    ]
  )
  func matrix(impact: Redress_V1_Level, urgency: Redress_V1_Level, expected: Redress_V1_Priority) {
    #expect(Triager.priority(impact: impact, urgency: urgency) == expected)
  }

  @Test("a standard client's wrong item by email is low impact, medium urgency, P4")
  func baseline() {
    let triage = self.triager.triage(validReport())
    #expect(triage.impact == .low)
    #expect(triage.urgency == .medium)
    #expect(triage.priority == .p4)
    #expect(!triage.needsReview)
    #expect(triage.reasons.last == "Impact low × urgency medium: P4.")
  }

  @Test("account tier and yearly value set impact, the higher one winning")
  func impactFromClient() {
    let premium = self.triager.triage(validReport { $0.customer.tier = .premium })
    #expect(premium.impact == .medium)
    let strategic = self.triager.triage(validReport { $0.customer.tier = .strategic })
    #expect(strategic.impact == .high)
    let valuable = self.triager.triage(
      validReport {
        $0.customer.tier = .standard
        $0.customer.yearlyValue = .with {
          $0.currency = "EUR"
          $0.amountMinor = 25_000_000
        }
      })
    #expect(valuable.impact == .high)
    #expect(valuable.reasons.contains("Yearly value 250000.00 EUR: impact high."))
  }

  @Test("a public channel raises urgency one level and a legal notice makes it high")
  func channelRaisesUrgency() {
    let email = self.triager.triage(validReport { $0.category = .communication })
    #expect(email.urgency == .low)
    let publicPost = self.triager.triage(
      validReport {
        $0.category = .communication
        $0.channel = .publicSocial
      })
    #expect(publicPost.urgency == .medium)
    #expect(publicPost.reasons.contains("Raised on a public channel: urgency raised to medium."))
    let wrongItemPublic = self.triager.triage(validReport { $0.channel = .publicSocial })
    #expect(wrongItemPublic.urgency == .high)
    #expect(wrongItemPublic.priority == .p3)
    let legal = self.triager.triage(
      validReport {
        $0.category = .communication
        $0.channel = .legalNotice
      })
    #expect(legal.urgency == .high)
    #expect(legal.reasons.contains("Raised by legal notice: urgency high."))
  }

  @Test("an enterprise client's defective product is P1")
  func p1() {
    let triage = self.triager.triage(
      validReport {
        $0.customer.tier = .enterprise
        $0.category = .defectiveProduct
      })
    #expect(triage.priority == .p1)
  }

  @Test("a demand above the policy amount needs review; at the amount it does not")
  func review() {
    let above = self.triager.triage(validReport { $0.demand.amount.amountMinor = 50_001 })
    #expect(above.needsReview)
    #expect(above.reasons.contains("Demand 500.01 USD is above the policy amount 500.00 USD: needs review."))
    let at = self.triager.triage(validReport { $0.demand.amount.amountMinor = 50_000 })
    #expect(!at.needsReview)
    let custom = Triager(policy: .init(reviewAboveMinor: ["USD": 1_000], yearlyValueThresholds: [:]))
    #expect(custom.triage(validReport()).needsReview)
  }

  @Test("a demand in a currency without a policy amount needs review")
  func unknownCurrencyNeedsReview() {
    let triage = self.triager.triage(validReport { $0.demand.amount.currency = "SEK" })
    #expect(triage.needsReview)
    #expect(triage.reasons.contains("No policy amount is configured for SEK: the demand needs review."))
  }

  @Test("triage is deterministic: the same report gives the same triage and reasons")
  func deterministic() {
    let report = validReport {
      $0.customer.tier = .premium
      $0.channel = .publicSocial
      $0.demand.amount.amountMinor = 90_000
    }
    let first = self.triager.triage(report)
    for _ in 0..<20 {
      #expect(self.triager.triage(report) == first)
    }
    #expect(first.reasons.count >= 4)
  }
}
