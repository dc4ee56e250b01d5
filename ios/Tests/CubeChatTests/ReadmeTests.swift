// The quick start of ios/README.md, run against cubeserver (keep the two the same). The region
// between the guide markers is also what a docs/guide page embeds as
// `<!-- snippet: ios/Tests/CubeChatTests/ReadmeTests.swift#swift-quick-start -->`.
import Foundation
import Testing

@testable import CubeChat

@Suite struct ReadmeTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func quickStart() async throws {
        let friend = try await online(server)
        let me = try await member(server, config: server.restConfig())
        let (config, login, friendId) = (server.config(), me.login, friend.id)
        let path = try tempDir("cubechat-swift-readme").appendingPathComponent("p.jpg").path

        let size = try await withTimeout("quick start", seconds: 30) { () -> UInt64 in
            // [guide:swift-quick-start]
            let client = try ChatClient(config: config)
            _ = try await client.logIn(login: .login(login: login), password: password)

            // The connection state: the current value, and every change as a stream.
            let states = try client.connectionStates()
            try await client.connectChat(auth: .sessionToken)
            for await state in states where state == .connected { break }

            // New messages as they arrive; leaving the loop ends the subscription.
            let inbox = try client.messages()
            let dialog = try await client.createDialog(dialog: NewDialog(kind: .private, occupantsIds: [friendId]))
            _ = try await client.sendMessage(message: OutgoingMessage(dialogId: dialog.id, recipientId: friendId, body: "hi"))

            // A dialog's timeline as whole lists: the cached snapshot, then the list after each change.
            for await messages in try client.timeline(dialogId: dialog.id, limit: 50) {
                if messages.contains(where: { $0.body == "hi" }) { break }
            }

            // A download with progress; cancelling the Task cancels it.
            let photo = try await client.upload(bytes: Data("photo".utf8), options: UploadOptions(name: "p.jpg"))
            let size = try await client.download(uid: photo.uid, to: path) { done, total in
                print("\(done) of \(total)")
            }
            _ = inbox
            try await client.destroyChat()
            // [/guide]
            return size
        }
        #expect(size == 5)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("photo".utf8))
        try await eventually("the friend got it") { friend.events.messages.contains { $0.body == "hi" } }
        try await friend.client.destroyChat()
    }
}
