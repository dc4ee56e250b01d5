// Cloud storage through the Swift bindings and the async transfer layer against cubeserver:
// a 5 MB attachment uploaded and downloaded with progress, sent in a message and fetched by
// another user; cancellation by token, by a progress callback and by cancelling the Task
// (nothing left behind); typed bad-input errors.
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

@testable import CubeChat

/// Records progress events; optionally cancels `token` (or calls `onCancel`) once `cancelAt`
/// of the total is done.
final class Progress: TransferListener, @unchecked Sendable {
    private let lock = NSLock()
    private var list: [(UInt64, UInt64)] = []
    private let cancelAt: Double?
    private let onCancel: (@Sendable () -> Void)?

    init(cancelAt: Double? = nil, onCancel: (@Sendable () -> Void)? = nil) {
        self.cancelAt = cancelAt
        self.onCancel = onCancel
    }

    func onProgress(done: UInt64, total: UInt64) throws { record(done, total) }

    /// The same, as a `TransferProgress` closure for the async layer.
    var closure: TransferProgress { { [self] done, total in record(done, total) } }

    private func record(_ done: UInt64, _ total: UInt64) {
        lock.locked { list.append((done, total)) }
        if let cancelAt, total > 0, Double(done) >= Double(total) * cancelAt { onCancel?() }
    }

    var events: [(UInt64, UInt64)] { lock.locked { list } }

    /// 0 first, total last, growing only, 3 to 102 events.
    func expectComplete(_ total: UInt64, sourceLocation: SourceLocation = #_sourceLocation) {
        let e = events
        #expect(e.first.map { $0 == (0, total) } == true, "\(e.prefix(3))", sourceLocation: sourceLocation)
        #expect(e.last.map { $0 == (total, total) } == true, "\(e.suffix(3))", sourceLocation: sourceLocation)
        let dones = e.map(\.0)
        #expect(dones == Array(Set(dones)).sorted(), "progress only grows", sourceLocation: sourceLocation)
        #expect((3...102).contains(e.count), "\(e.count) events", sourceLocation: sourceLocation)
    }
}

/// The status code and body size of a plain HTTP GET.
func httpGet(_ url: String) async throws -> (Int, Int) {
    guard let u = URL(string: url) else { throw Failure("bad URL") }
    return try await withCheckedThrowingContinuation { continuation in
        URLSession.shared.dataTask(with: u) { data, response, error in
            if let error {
                continuation.resume(throwing: error)
            } else {
                continuation.resume(returning: ((response as? HTTPURLResponse)?.statusCode ?? 0, data?.count ?? 0))
            }
        }.resume()
    }
}

@Suite struct StorageTests {
    let server: Cubeserver
    init() throws { server = try Cubeserver() }

    @Test func fiveMegabyteAttachmentRoundTripWithProgress() async throws {
        let alice = try await member(server)
        let bob = try await member(server)
        let dir = try tempDir("cubechat-swift-storage")
        let data = Data((0..<(5 * 1024 * 1024)).map { UInt8(($0 * 31) % 251) })
        let src = dir.appendingPathComponent("clip.mp4")
        try data.write(to: src)
        let size = UInt64(data.count)

        let up = Progress()
        let blob = try await alice.client.upload(file: src.path, progress: up.closure)
        #expect(blob.size == size && blob.name == "clip.mp4" && blob.contentType == "video/mp4")
        #expect(!blob.public)
        up.expectComplete(size)

        let group = try await alice.client.createDialog(
            dialog: NewDialog(kind: .group, name: "Clips", occupantsIds: [bob.id]))
        var attachment = attachmentFromBlob(blob: blob)
        #expect(attachment.kind == "video")
        attachment.duration = 12
        _ = try await alice.client.createMessage(message: NewMessage(dialogId: group.id, attachments: [attachment]))
        let history = try await bob.client.history(dialogId: group.id, params: ListParams(), markAsRead: false)
        let got = try #require(history.first?.attachments.first)
        #expect(got.uid == blob.uid && got.name == "clip.mp4" && got.contentType == "video/mp4")
        #expect(got.size == size && got.duration == 12)

        // Through the generated call with a listener, and through the async layer.
        let down = Progress()
        let dest = dir.appendingPathComponent("copy.mp4")
        #expect(try await bob.client.downloadFile(uid: blob.uid, path: dest.path, listener: down, cancel: nil) == size)
        #expect(try Data(contentsOf: dest) == data)
        down.expectComplete(size)
        let again = Progress()
        let dest2 = dir.appendingPathComponent("copy2.mp4")
        #expect(try await bob.client.download(uid: blob.uid, to: dest2.path, progress: again.closure) == size)
        #expect(try Data(contentsOf: dest2) == data)
        again.expectComplete(size)

        // The private URL carries bob's token and works for a plain HTTP client.
        let (status, length) = try await httpGet(try bob.client.blobUrl(uid: blob.uid, private: true))
        #expect(status == 200 && length == data.count)
        #expect(try await httpGet(try bob.client.blobUrl(uid: blob.uid, private: false)).0 == 401)

        await expectChatError("Forbidden") { try await bob.client.renameBlob(id: blob.id, name: "x.mp4") }
        #expect(try await alice.client.renameBlob(id: blob.id, name: "final.mp4").name == "final.mp4")
        #expect(try await alice.client.listBlobs(page: 1, perPage: 10).items.map(\.uid) == [blob.uid])
        try await alice.client.deleteBlob(id: blob.id)
        let gone = dir.appendingPathComponent("gone")
        await expectChatError("NotFound") { try await bob.client.download(uid: blob.uid, to: gone.path) }
        #expect(!FileManager.default.fileExists(atPath: gone.path))
    }

    @Test func cancellationLeavesNothingBehind() async throws {
        let alice = try await member(server)
        let data = Data((0..<(2 * 1024 * 1024)).map { UInt8($0 % 256) })

        // By token, from the progress callback.
        let token = CancelToken()
        await expectChatError("Cancelled") {
            try await alice.client.uploadBytes(
                data: data, options: UploadOptions(name: "a.bin"),
                listener: Progress(cancelAt: 0.25, onCancel: { token.cancel() }), cancel: token)
        }
        #expect(token.isCancelled())
        #expect(try await alice.client.listBlobs(page: 1, perPage: 10).totalEntries == 0)

        let blob = try await alice.client.upload(bytes: data, options: UploadOptions(name: "a.bin", public: true))
        let dir = try tempDir("cubechat-swift-cancel")
        let token2 = CancelToken()
        await expectChatError("Cancelled") {
            try await alice.client.downloadFile(
                uid: blob.uid, path: dir.appendingPathComponent("half.bin").path,
                listener: Progress(cancelAt: 0.5, onCancel: { token2.cancel() }), cancel: token2)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [])

        // By cancelling the Task (the async layer turns it into a token): Cancelled, no file.
        let client = alice.client
        let path = dir.appendingPathComponent("task.bin").path
        let task = Task { try await client.download(uid: blob.uid, to: path) }
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("the download was not cancelled")
        } catch {
            #expect(caseName(error) == "Cancelled", "\(error)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [])

        // Cancelling mid-way, from the progress closure: the Task is cancelled at 30 %.
        let holder = TaskHolder()
        let midPath = dir.appendingPathComponent("mid.bin").path
        let progress = Progress(cancelAt: 0.3, onCancel: { holder.cancel() })
        let mid = Task { try await client.upload(bytes: data, options: UploadOptions(name: "b.bin"), progress: progress.closure) }
        holder.set(mid)
        do {
            _ = try await mid.value
            Issue.record("the upload was not cancelled")
        } catch {
            #expect(caseName(error) == "Cancelled", "\(error)")
        }
        #expect(progress.events.count >= 2)
        #expect(try await alice.client.listBlobs(page: 1, perPage: 10).items.map(\.uid) == [blob.uid])
        #expect(!FileManager.default.fileExists(atPath: midPath))
    }

    @Test func badInputIsTyped() async throws {
        let alice = try await member(server)
        let dir = try tempDir("cubechat-swift-bad-input")
        await expectChatError("InvalidInput") {
            try await alice.client.upload(file: dir.appendingPathComponent("missing").path)
        }
        await expectChatError("InvalidInput") { try await alice.client.upload(bytes: Data()) }
        await expectChatError("InvalidInput") {
            try await alice.client.download(uid: "../etc", to: dir.appendingPathComponent("x").path)
        }
        await expectChatError("NotFound") { try await alice.client.blobByUid(uid: String(repeating: "0", count: 32)) }
        #expect(try await alice.client.listBlobs(page: 1, perPage: 10).totalEntries == 0)
    }
}

/// Holds a Task so a callback on another thread can cancel it (a cancel before `set` is kept).
final class TaskHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var task: Task<Blob, Error>?
    private var cancelled = false
    func set(_ t: Task<Blob, Error>) {
        let already = lock.locked { () -> Bool in
            task = t
            return cancelled
        }
        if already { t.cancel() }
    }
    func cancel() {
        let t = lock.locked { () -> Task<Blob, Error>? in
            cancelled = true
            return task
        }
        t?.cancel()
    }
}
