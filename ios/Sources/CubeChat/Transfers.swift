// Uploads and downloads as Swift async calls that honour Task cancellation: UniFFI's Swift
// futures ignore it, so each call here makes a CancelToken and cancels it when the calling
// Task is cancelled (the transfer then fails with `ChatError.Cancelled`, leaving nothing
// behind). Progress goes to a closure, called on a cubechat thread.
import Foundation

/// Progress of a transfer: `done` bytes of `total` (0 when the total is unknown). Called on a
/// cubechat thread, once at 0, about once per percent and once at the end; return quickly.
public typealias TransferProgress = @Sendable (_ done: UInt64, _ total: UInt64) -> Void

/// Hands transfer progress to a closure.
private final class ProgressRelay: TransferListener, @unchecked Sendable {
    private let progress: TransferProgress
    init(_ progress: @escaping TransferProgress) { self.progress = progress }
    func onProgress(done: UInt64, total: UInt64) throws { progress(done, total) }
}

/// Runs `body` with a fresh token that is cancelled when the calling Task is (also when it
/// already was).
private func withCancelToken<T>(_ body: (CancelToken) async throws -> T) async throws -> T {
    let token = CancelToken()
    return try await withTaskCancellationHandler {
        try await body(token)
    } onCancel: {
        token.cancel()
    }
}

extension ChatClient {
    /// Uploads the file at `path` (streamed, at most 100 MB) and returns the complete blob.
    /// Cancelling the calling Task cancels the upload (the half-made blob is deleted).
    /// Errors: as `uploadFile`, `ChatError.Cancelled` when cancelled.
    public func upload(
        file path: String, options: UploadOptions = UploadOptions(),
        progress: TransferProgress? = nil
    ) async throws -> Blob {
        try await withCancelToken { token in
            try await uploadFile(
                path: path, options: options, listener: progress.map(ProgressRelay.init),
                cancel: token)
        }
    }

    /// Uploads `bytes` (at most 100 MB) and returns the complete blob. Cancelling the calling
    /// Task cancels the upload. Errors: as `uploadBytes`, `ChatError.Cancelled` when cancelled.
    public func upload(
        bytes: Data, options: UploadOptions = UploadOptions(),
        progress: TransferProgress? = nil
    ) async throws -> Blob {
        try await withCancelToken { token in
            try await uploadBytes(
                data: bytes, options: options, listener: progress.map(ProgressRelay.init),
                cancel: token)
        }
    }

    /// Downloads the blob `uid` into the file at `path` and returns the byte count. The file
    /// appears only once the download is complete; cancelling the calling Task cancels it
    /// and leaves no file. Errors: as `downloadFile`, `ChatError.Cancelled` when cancelled.
    public func download(
        uid: String, to path: String, progress: TransferProgress? = nil
    ) async throws -> UInt64 {
        try await withCancelToken { token in
            try await downloadFile(
                uid: uid, path: path, listener: progress.map(ProgressRelay.init), cancel: token)
        }
    }
}
