// Smoke tests of the Swift bindings (run by `make test` where a Swift toolchain exists).
import XCTest
@testable import CubeChat

final class CubeChatTests: XCTestCase {
    func testInvalidConfigIsATypedError() {
        XCTAssertThrowsError(try ChatClient(config: ClientConfig(
            appId: 0, authKey: "k", authSecret: nil, apiUrl: "https://api.example.com"))) { error in
            guard case ChatError.InvalidInput = error else { return XCTFail("\(error)") }
        }
    }

    func testUnreachableServerIsANetworkError() async throws {
        let client = try ChatClient(config: ClientConfig(
            appId: 7, authKey: "k", authSecret: nil, apiUrl: "http://127.0.0.1:1"))
        do {
            _ = try await client.createSession()
            XCTFail("expected an error")
        } catch ChatError.Network {
        }
    }

    func testAsyncPanicBecomesAnError() async {
        do {
            try await triggerTestPanicAsync()
            XCTFail("expected an error")
        } catch ChatError.Internal {
        } catch {
            XCTFail("\(error)")
        }
    }
}
