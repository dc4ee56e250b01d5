// Android only (compiled into the AAR, not into the JVM build: it needs android.jar and
// androidx.lifecycle). Follows the app's process lifecycle and the device's default network
// for one ChatClient: foreground → markActive, background → markInactive (ConnectyCube's
// active/inactive: pushes instead of live messages while in the background), a default
// network appearing → setNetworkAvailable(true) (reconnect at once), lost → false (stop
// reconnect attempts).
package io.cubechat.android

import android.content.Context
import android.net.ConnectivityManager
import android.net.Network
import androidx.annotation.MainThread
import androidx.lifecycle.DefaultLifecycleObserver
import androidx.lifecycle.Lifecycle
import androidx.lifecycle.LifecycleOwner
import androidx.lifecycle.ProcessLifecycleOwner
import io.cubechat.ChatClient
import io.cubechat.ChatException
import io.cubechat.CubeChat
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.cancel
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.launch

/**
 * Ties [client] to the process lifecycle and the default network. Call [start] once on the
 * main thread (e.g. in `Application.onCreate`), [close] when the client goes away. The engine
 * calls run in order, one at a time, on [scope]; a call that fails because chat is not
 * connected (or no user is logged in) is skipped: the engine applies the network state on
 * its own, and a later foreground marks active again.
 */
class ChatLifecycle(
    private val client: ChatClient,
    context: Context,
    private val lifecycle: Lifecycle = ProcessLifecycleOwner.get().lifecycle,
    private val scope: CoroutineScope = CoroutineScope(SupervisorJob() + Dispatchers.Default),
) : AutoCloseable {
    private val connectivity: ConnectivityManager =
        context.applicationContext.getSystemService(ConnectivityManager::class.java)
    private val calls = Channel<suspend ChatClient.() -> Unit>(Channel.UNLIMITED)

    private val foreground = object : DefaultLifecycleObserver {
        override fun onStart(owner: LifecycleOwner) { calls.trySend { markActive() } }
        override fun onStop(owner: LifecycleOwner) { calls.trySend { markInactive() } }
    }

    private val network = object : ConnectivityManager.NetworkCallback() {
        override fun onAvailable(network: Network) { calls.trySend { setNetworkAvailable(true) } }
        override fun onLost(network: Network) { calls.trySend { setNetworkAvailable(false) } }
    }

    /** Starts following the lifecycle and the network (needs ACCESS_NETWORK_STATE, in the AAR's manifest). */
    @MainThread
    fun start() {
        scope.launch {
            for (call in calls) {
                try {
                    client.call()
                } catch (e: ChatException.ChatNotConnected) {
                    // Not connected: nothing to mark; the next foreground marks again.
                } catch (e: ChatException.NotLoggedIn) {
                    // Logged out: nothing to mark.
                }
            }
        }
        lifecycle.addObserver(foreground)
        connectivity.registerDefaultNetworkCallback(network)
    }

    /** Stops following; the client itself stays open. */
    @MainThread
    override fun close() {
        lifecycle.removeObserver(foreground)
        runCatching { connectivity.unregisterNetworkCallback(network) }
        calls.close()
        scope.cancel()
    }
}

/** A started [ChatLifecycle] for this client (call on the main thread; close it with the client). */
@MainThread
fun CubeChat.followLifecycle(context: Context): ChatLifecycle = ChatLifecycle(client, context).also { it.start() }
