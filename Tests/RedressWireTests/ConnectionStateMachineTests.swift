import GRPCCore
import NIOCore
import Testing

@testable import RedressWire

/// The connection's protocol without a channel: frames and timer events in, actions out. The inbound budgets and
/// the request-arrival timeout (issue 11, findings 2 and 3) are decided here, so they are tested here, octet by
/// octet and with time driven by hand.
@Suite("Connection state machine")
struct ConnectionStateMachineTests {
  typealias Action = ConnectionStateMachine.Action

  static let path = "/grpc.testing.TestService/UnaryCall"

  /// A server machine past the handshake: the client's preface and empty `SETTINGS` received.
  static func activeServer(
    _ configure: (inout ConnectionConfig) -> Void = { _ in },
    serverBudget: InboundBudget? = nil
  ) -> ConnectionStateMachine {
    var config = ConnectionConfig.defaults
    configure(&config)
    var machine = ConnectionStateMachine(role: .server, config: config, serverBudget: serverBudget, now: .now())
    _ = Self.feed(&machine, .preface(.clientDefault))
    _ = Self.feed(&machine, .frame(.settings([])))
    #expect(machine.phase == .active)
    return machine
  }

  @discardableResult
  static func feed(_ machine: inout ConnectionStateMachine, _ element: FrameParser.Element) -> [Action] {
    var actions: [Action] = []
    machine.receive(element, now: .now(), into: &actions)
    return actions
  }

  @discardableResult
  static func feed(_ machine: inout ConnectionStateMachine, _ frame: Frame) -> [Action] {
    Self.feed(&machine, .frame(frame))
  }

  static func open(_ machine: inout ConnectionStateMachine, stream id: UInt32, endStream: Bool = false) -> [Action] {
    Self.feed(&machine, .headers(streamID: id, path: Self.path, metadata: [:], endStream: endStream))
  }

  static func fragment(_ id: UInt32, _ octets: Int, _ flags: FrameFlags = []) -> Frame {
    .message(streamID: id, fragment: ByteBuffer(repeating: 0x41, count: octets), flags: flags)
  }

  static func frames(_ actions: [Action]) -> [Frame] {
    actions.compactMap { if case .write(let frame) = $0 { frame } else { nil } }
  }

  /// The errors streams' readers were failed with after what they had queued (the server answers with them).
  static func failuresAfterQueued(_ actions: [Action]) -> [(key: UInt64, error: RPCError)] {
    actions.compactMap { if case .failInboundAfterQueued(let key, let error) = $0 { (key, error) } else { nil } }
  }

  static func deliveredMessages(_ actions: [Action]) -> [(key: UInt64, octets: Int, credit: Int, bytes: Int)] {
    actions.compactMap {
      if case .deliver(let key, .message(let message, let credit, let bytes)) = $0 {
        (key, message.readableBytes, credit, bytes)
      } else {
        nil
      }
    }
  }

  static func closes(_ actions: [Action]) -> Bool {
    actions.contains { if case .close = $0 { true } else { false } }
  }

  // MARK: - Handshake

  @Test("a server answers the preface with its own, its SETTINGS and its connection window, then arms the idle timer")
  func handshake() {
    var machine = ConnectionStateMachine(role: .server, config: .defaults, serverBudget: nil, now: .now())
    let answer = Self.feed(&machine, .preface(.clientDefault))
    #expect(answer.contains { if case .writePreface(.selected(Preface.currentVersion)) = $0 { true } else { false } })
    #expect(Self.frames(answer) == [.settings(ConnectionConfig.defaults.localSettings.pairs), .windowUpdate(streamID: 0, increment: 4 * 1024 * 1024 - 65_535)])
    #expect(machine.phase == .awaitingSettings)

    let settled = Self.feed(&machine, .frame(.settings([])))
    #expect(Self.frames(settled) == [.settingsAck])
    #expect(settled.contains { if case .cancelHandshakeTimer = $0 { true } else { false } })
    #expect(settled.contains { if case .armIdleTimer(.seconds(300)) = $0 { true } else { false } })
  }

  @Test("a handshake that does not finish in time ends with GOAWAY HANDSHAKE_TIMEOUT; a finished one ignores the timer")
  func handshakeTimeout() {
    var machine = ConnectionStateMachine(role: .server, config: .defaults, serverBudget: nil, now: .now())
    Self.feed(&machine, .preface(.clientDefault))
    var actions: [Action] = []
    machine.handshakeTimedOut(into: &actions)
    guard case .goAway(_, .handshakeTimeout, _)? = Self.frames(actions).first else {
      Issue.record("expected GOAWAY HANDSHAKE_TIMEOUT, got \(actions)")
      return
    }
    #expect(Self.closes(actions))

    var active = Self.activeServer()
    actions = []
    active.handshakeTimedOut(into: &actions)
    #expect(actions.isEmpty)
  }

  // MARK: - Inbound budgets (finding 2)

  @Test("fragments count against the connection's budget; the message that would pass it fails its RPC and is discarded")
  func connectionBudget() {
    var machine = Self.activeServer { $0.maxBufferedInboundBytes = 64 * 1024 }
    let budget = machine.inboundBudget
    for id: UInt32 in [1, 3, 5] {
      _ = Self.open(&machine, stream: id)
    }
    Self.feed(&machine, Self.fragment(1, 30 * 1024))
    Self.feed(&machine, Self.fragment(3, 30 * 1024))
    #expect(budget.inUse == 60 * 1024)

    let refused = Self.feed(&machine, Self.fragment(5, 8 * 1024))
    let failures = Self.failuresAfterQueued(refused)
    #expect(failures.count == 1)
    #expect(failures.first?.key == 5)
    #expect(failures.first?.error.code == .resourceExhausted)
    #expect(failures.first?.error.message.contains("maxBufferedInboundBytes") == true)
    #expect(budget.inUse == 60 * 1024, "nothing of the refused message is held")

    // The rest of the refused message is discarded, never buffered, and its credit goes back so the peer is not stalled.
    let rest = Self.feed(&machine, Self.fragment(5, 16 * 1024, .endMessage))
    #expect(Self.deliveredMessages(rest).isEmpty)
    #expect(budget.inUse == 60 * 1024)
    #expect(!Self.closes(rest))

    // A reset stream gives its octets back.
    Self.feed(&machine, .resetStream(streamID: 1, code: .cancel))
    #expect(budget.inUse == 30 * 1024)
    // So does the connection closing.
    var actions: [Action] = []
    machine.tearDown(reason: RPCError(code: .unavailable, message: "closed"), into: &actions)
    #expect(budget.inUse == 0)
  }

  @Test("every connection draws on the server's budget: one connection's octets refuse another's")
  func serverBudget() {
    let server = InboundBudget(serverLimit: 64 * 1024)
    var first = Self.activeServer({ $0.maxBufferedInboundBytes = 48 * 1024 }, serverBudget: server)
    var second = Self.activeServer({ $0.maxBufferedInboundBytes = 48 * 1024 }, serverBudget: server)
    _ = Self.open(&first, stream: 1)
    _ = Self.open(&second, stream: 1)
    Self.feed(&first, Self.fragment(1, 40 * 1024))
    #expect(server.inUse == 40 * 1024)

    let refused = Self.feed(&second, Self.fragment(1, 30 * 1024))
    let failure = Self.failuresAfterQueued(refused).first
    #expect(failure?.error.code == .resourceExhausted)
    #expect(failure?.error.message.contains("across its connections") == true)
    #expect(second.inboundBudget.inUse == 0)
    #expect(server.inUse == 40 * 1024)
  }

  @Test("a whole message moves its reservation to the reader, and reading it returns its flow-control credit")
  func deliveredMessageKeepsItsReservation() {
    var machine = Self.activeServer { $0.streamWindowSize = 64 * 1024 }
    _ = Self.open(&machine, stream: 1)
    Self.feed(&machine, Self.fragment(1, 20 * 1024))
    let end = Self.feed(&machine, Self.fragment(1, 20 * 1024, .endMessage))
    let delivered = Self.deliveredMessages(end)
    #expect(delivered.count == 1)
    #expect(delivered.first?.octets == 40 * 1024)
    #expect(delivered.first?.bytes == 40 * 1024, "the reader releases what the message holds")
    // The first fragment was credited as it arrived (nothing unread then); the last is owed until read.
    #expect(delivered.first?.credit == 20 * 1024)
    #expect(machine.inboundBudget.inUse == 40 * 1024)

    // A reader that does not read stops the sender: the rest of the window is all the peer gets.
    let overrun = Self.feed(&machine, Self.fragment(1, 48 * 1024))
    guard case .goAway(_, .flowControlError, _)? = Self.frames(overrun).first else {
      Issue.record("expected GOAWAY FLOW_CONTROL_ERROR for a MESSAGE past the stream window, got \(overrun)")
      return
    }
  }

  @Test("reading messages gives their credit back in WINDOW_UPDATEs of at least half the window")
  func creditOnRead() {
    var machine = Self.activeServer { $0.streamWindowSize = 64 * 1024 }
    _ = Self.open(&machine, stream: 1)
    let end = Self.feed(&machine, Self.fragment(1, 40 * 1024, .endMessage))
    #expect(Self.frames(end).allSatisfy { if case .windowUpdate(1, _) = $0 { false } else { true } }, "nothing credited before the read")
    var actions: [Action] = []
    machine.messageRead(key: 1, credit: 40 * 1024, into: &actions)
    #expect(Self.frames(actions) == [.windowUpdate(streamID: 1, increment: 40 * 1024)])
  }

  @Test("a message over maxMessageSize fails its RPC with resourceExhausted before it is buffered")
  func messageTooLarge() {
    var machine = Self.activeServer { $0.maxMessageSize = 16 * 1024 }
    _ = Self.open(&machine, stream: 1)
    Self.feed(&machine, Self.fragment(1, 12 * 1024))
    let over = Self.feed(&machine, Self.fragment(1, 12 * 1024))
    #expect(Self.failuresAfterQueued(over).first?.error.code == .resourceExhausted)
    #expect(machine.inboundBudget.inUse == 0)
  }

  // MARK: - Request-arrival timeout (finding 3)

  @Test("a stream whose request does not arrive in time fails deadlineExceeded; its octets are given back and the rest discarded")
  func requestTimeout() {
    var machine = Self.activeServer { $0.requestTimeout = .seconds(7) }
    let opened = Self.open(&machine, stream: 1)
    #expect(opened.contains { if case .armRequestTimer(1, .seconds(7)) = $0 { true } else { false } })
    Self.feed(&machine, Self.fragment(1, 10 * 1024))
    #expect(machine.inboundBudget.inUse == 10 * 1024)

    var actions: [Action] = []
    machine.requestTimedOut(key: 1, into: &actions)
    let failure = Self.failuresAfterQueued(actions).first
    #expect(failure?.key == 1)
    #expect(failure?.error.code == .deadlineExceeded)
    #expect(failure?.error.message.contains("request timeout of 7") == true)
    #expect(machine.inboundBudget.inUse == 0)

    let late = Self.feed(&machine, Self.fragment(1, 10 * 1024, .endMessage))
    #expect(Self.deliveredMessages(late).isEmpty)
    #expect(machine.inboundBudget.inUse == 0)
  }

  @Test("the request timer stops at the end of the first message, and a stream opened with END_STREAM never arms it")
  func requestArrivalStopsTheTimer() {
    var machine = Self.activeServer()
    _ = Self.open(&machine, stream: 1)
    let arrived = Self.feed(&machine, Self.fragment(1, 100, .endMessage))
    #expect(arrived.contains { if case .cancelRequestTimer(1) = $0 { true } else { false } })
    var actions: [Action] = []
    machine.requestTimedOut(key: 1, into: &actions)
    #expect(actions.isEmpty, "a timer that fires after the request arrived does nothing")

    let bodiless = Self.open(&machine, stream: 3, endStream: true)
    #expect(!bodiless.contains { if case .armRequestTimer = $0 { true } else { false } })
    #expect(bodiless.contains { if case .finishInbound(3) = $0 { true } else { false } })
  }

  @Test("without a request timeout no timer is armed")
  func requestTimeoutDisabled() {
    var machine = Self.activeServer { $0.requestTimeout = nil }
    let opened = Self.open(&machine, stream: 1)
    #expect(!opened.contains { if case .armRequestTimer = $0 { true } else { false } })
  }

  // MARK: - Streams, idle and draining

  @Test("streams past MAX_CONCURRENT_STREAMS are refused; a closed connection's idle timer ends it with GOAWAY")
  func concurrencyAndIdle() {
    var machine = Self.activeServer { $0.maxConcurrentStreams = 1 }
    let first = Self.open(&machine, stream: 1)
    #expect(first.contains { if case .cancelIdleTimer = $0 { true } else { false } })
    let second = Self.open(&machine, stream: 3)
    #expect(Self.frames(second) == [.resetStream(streamID: 3, code: .refusedStream)])

    let reset = Self.feed(&machine, .resetStream(streamID: 1, code: .cancel))
    #expect(reset.contains { if case .armIdleTimer = $0 { true } else { false } })
    var actions: [Action] = []
    machine.idleTimedOut(into: &actions)
    guard case .goAway(3, .noError, let debug)? = Self.frames(actions).first else {
      Issue.record("expected GOAWAY NO_ERROR naming the last stream, got \(actions)")
      return
    }
    #expect(debug.hasPrefix("idle for 300"))
    #expect(Self.closes(actions))
  }

  @Test("outbound messages stop at the peer's stream and connection windows and go on when both open")
  func outboundFlowControl() {
    var machine = Self.activeServer()
    _ = Self.open(&machine, stream: 1)
    var actions: [Action] = []
    machine.enqueue(key: 1, item: .headers(path: "", metadata: [:]), promise: nil, into: &actions)
    machine.enqueue(key: 1, item: .message(ByteBuffer(repeating: 1, count: 100_000), compressed: false), promise: nil, into: &actions)
    while machine.writeNext(into: &actions) {}
    let sent = actions.reduce(0) { total, action in
      if case .writeMessage(1, let fragment, _) = action { total + fragment.readableBytes } else { total }
    }
    #expect(sent == 65_535, "the peer's initial stream and connection windows")

    // More stream window alone moves nothing: the connection window is spent too.
    actions = []
    Self.feed(&machine, .windowUpdate(streamID: 1, increment: 50_000))
    while machine.writeNext(into: &actions) {}
    #expect(!actions.contains { if case .writeMessage = $0 { true } else { false } })
    Self.feed(&machine, .windowUpdate(streamID: 0, increment: 50_000))
    while machine.writeNext(into: &actions) {}
    let rest = actions.reduce(0) { total, action in
      if case .writeMessage(1, let fragment, _) = action { total + fragment.readableBytes } else { total }
    }
    #expect(rest == 100_000 - 65_535)
  }
}
