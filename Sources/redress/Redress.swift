import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// `redress`: report mistakes, follow and move remedies, and run a local stack.
@main
struct Redress: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "redress",
    abstract: "Report mistakes made with clients and drive their remedies.",
    discussion: """
      Connection settings come from flags, then REDRESS_* environment variables, then the profile file \
      (--profile, default ./redress-data/client.json, which `redress dev` writes).

      Exit codes: 0 success; 1 unexpected failure; 2 the request was invalid (every problem is listed); \
      3 not found; 4 conflict (a precondition is not met, the remedy changed meanwhile, or the idempotency \
      key was used for something else); 5 not authenticated or not allowed; 6 unavailable or rate limited \
      (try again); 64 bad command-line usage.
      """,
    subcommands: [
      Submit.self,
      Incidents.self,
      Remedies.self,
      ReceiptCommand.self,
      Investigate.self,
      Reinvestigate.self,
      Apologize.self,
      Offer.self,
      Respond.self,
      Compensate.self,
      Approve.self,
      Reject.self,
      Withdraw.self,
      Fix.self,
      GoodwillCommand.self,
      FollowUpCommand.self,
      Learn.self,
      EscalateCommand.self,
      DeclineCommand.self,
      ReferCommand.self,
      LegalCommand.self,
      Skip.self,
      Note.self,

      Webhooks.self,
      Dev.self,
      Certs.self,
      Health.self,
    ]
  )

  /// A closed pipe is an error `write` reports (EPIPE), which ``Output`` answers by exiting quietly, rather
  /// than a signal that kills the process only on the commands that never touched a socket (NIO ignores
  /// SIGPIPE, so its commands would otherwise behave differently from the rest).
  static func main() async {
    signal(SIGPIPE, SIG_IGN)
    await Self.main(nil)
  }
}
