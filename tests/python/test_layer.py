"""The hand-written Python layer against a real cubeserver: delivery off the engine's threads
(a blocked listener delays nothing else), raising listeners keep receiving and are logged
with their traceback, streams own their subscriptions (break, close, drop, client close end
them, checked through the library's own count), callables and `async def` as listeners,
readable and redacted repr."""
import asyncio
import gc
import threading
import time

import cubechat

from conftest import eventually, new_user

SLOW_S = 3.0


async def pair(make_client, prefix):
    alice, a = await new_user(make_client, prefix + "a")
    bob, b = await new_user(make_client, prefix + "b")
    await alice.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    await bob.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    dialog = await alice.create_dialog(
        cubechat.NewDialog(kind=cubechat.DialogType.PRIVATE, occupants_ids=[b.id]))
    return alice, a, bob, b, dialog


def outgoing(dialog, to, body):
    return cubechat.OutgoingMessage(dialog_id=dialog.id, recipient_id=to, body=body)


async def next_item(stream, seconds=10):
    return await asyncio.wait_for(stream.__anext__(), seconds)


async def timed_sends(alice, bob_messages, dialog, b_id, tag, n=5):
    """Sends `n` messages; for each, how long `send_message` took and how long until bob's
    stream yielded it (seconds)."""
    sends, arrivals = [], []
    for i in range(n):
        body = f"{tag} {i}"
        start = time.monotonic()
        await alice.send_message(outgoing(dialog, b_id, body))
        sends.append(time.monotonic() - start)
        got = await next_item(bob_messages)
        arrivals.append(time.monotonic() - start)
        assert got.body == body
    return sends, arrivals


async def test_blocked_listeners_delay_neither_another_subscription_nor_another_clients_send(
        make_client):
    alice, a, bob, b, dialog = await pair(make_client, "sl")
    async with bob.messages() as bob_messages:
        base_sends, base_arrivals = await timed_sends(alice, bob_messages, dialog, b.id, "base")

        # Four listeners that block their thread for 3 s (the case: with delivery
        # on the engine's 2 threads this stalled every client of the process), an
        # `async def` one that sleeps 3 s, and a stream whose consumer sleeps 3 s.
        entered = threading.Semaphore(0)
        released = []

        def blocking(dialog_id, user_id, composing):
            entered.release()
            time.sleep(SLOW_S)
            released.append(time.monotonic())

        async def sleepy(dialog_id, user_id, composing):
            entered.release()
            await asyncio.sleep(SLOW_S)

        handles = [bob.subscribe_typing(blocking) for _ in range(4)]
        handles.append(bob.subscribe_typing(sleepy))
        slow_stream = bob.typing()

        async def slow_consumer():
            async for _ in slow_stream:
                await asyncio.sleep(SLOW_S)

        consumer = asyncio.create_task(slow_consumer())
        await alice.send_typing(dialog.id, b.id, True)
        assert await asyncio.to_thread(entered.acquire, True, 10), "no listener called"
        window_start = time.monotonic()
        sends, arrivals = await timed_sends(alice, bob_messages, dialog, b.id, "slow")
        window_end = time.monotonic()
        # Every slow listener was running (blocked) at once during the measurement.
        running = 1 + sum(1 for _ in range(4) if entered.acquire(blocking=False))
        # Each send and each arrival against the slowest of the baseline (the machine's own
        # jitter): none may be more than 100 ms later.
        d_send = max(sends) - max(base_sends)
        d_arrival = max(arrivals) - max(base_arrivals)
        ms = lambda xs: "/".join(f"{x * 1000:.0f}" for x in xs)  # noqa: E731
        print(f"\nsend ms: baseline {ms(base_sends)}, blocked {ms(sends)}; "
              f"arrival ms: baseline {ms(base_arrivals)}, blocked {ms(arrivals)}")
        assert d_send < 0.1, f"another client's send delayed by {d_send * 1000:.0f} ms"
        assert d_arrival < 0.1, f"another subscription delayed by {d_arrival * 1000:.0f} ms"
        assert running == 5, f"only {running} of the 5 slow listeners were running"
        assert not released, "measured while the listeners were still blocked"
        assert window_end - window_start < SLOW_S, "measurement window longer than the block"

        # The blocked listeners still get their later events, in order.
        seen = []
        handles.append(bob.subscribe_typing(lambda d, u, c: seen.append(c)))
        await alice.send_typing(dialog.id, b.id, False)
        await eventually(lambda: seen == [False])
        consumer.cancel()
        slow_stream.close()
        for h in handles:
            h.cancel()
    await alice.destroy_chat()
    await bob.destroy_chat()


class Sink(cubechat.LogSink):
    def __init__(self):
        self.lock = threading.Lock()
        self.records = []

    def log(self, record):
        with self.lock:
            self.records.append(record)

    def warnings(self):
        with self.lock:
            return [r.message for r in self.records if r.level == cubechat.LogLevel.WARN]


async def test_raising_listeners_keep_receiving_and_are_logged_with_their_traceback(make_client):
    sink = Sink()
    cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), sink)
    try:
        alice, a, bob, b, dialog = await pair(make_client, "rl")
        got_sync, got_async = [], []

        def shows_message_then_fails(message):
            got_sync.append(message.body)
            raise ValueError(f"cannot show {message.body}")

        async def fails_async(message):
            got_async.append(message.body)
            raise KeyError(message.body)

        bob.subscribe_messages(shows_message_then_fails)  # handle not kept: the client keeps it
        bob.subscribe_messages(fails_async)
        sent = [f"private text {i}" for i in range(3)]
        for body in sent:
            await alice.send_message(outgoing(dialog, b.id, body))
        await eventually(lambda: got_sync == sent and got_async == sent)
        await eventually(lambda: len(sink.warnings()) >= 2)
        logged = "\n".join(sink.warnings())
        assert "in shows_message_then_fails" in logged, logged
        assert "builtins.ValueError" in logged and "builtins.KeyError" in logged, logged
        assert "test_layer.py" in logged, "the traceback names the file"
        assert "private text" not in logged, "the exception text is withheld"
        await alice.destroy_chat()
        await bob.destroy_chat()
        bob.close()
    finally:
        cubechat.init_platform(cubechat.LogConfig(level=cubechat.LogLevel.INFO), None)


async def settled():
    """Waits (bounded) until no subscription of an earlier test is live any more (blocked
    listeners of the slow test finish their sleep first); the library's count is global."""
    gc.collect()
    await eventually(lambda: cubechat.live_subscription_count() == 0, seconds=2 * SLOW_S + 5)
    return 0


async def test_break_close_drop_and_client_close_end_subscriptions(make_client):
    alice, a, bob, b, dialog = await pair(make_client, "br")
    before = await settled()

    # break out of `async for`: the stream is dropped and its subscription ends.
    async def first_message():
        async for m in bob.messages():
            return m.body

    task = asyncio.create_task(first_message())
    await eventually(lambda: cubechat.live_subscription_count() == before + 1)
    await alice.send_message(outgoing(dialog, b.id, "one"))
    assert await asyncio.wait_for(task, 10) == "one"
    await eventually(lambda: cubechat.live_subscription_count() == before)

    # A stream dropped without being read.
    s = bob.statuses()
    assert cubechat.live_subscription_count() == before + 1
    del s
    gc.collect()
    await eventually(lambda: cubechat.live_subscription_count() == before)

    # close(): iteration ends at once.
    s = bob.message_changes()
    s.close()
    await eventually(lambda: cubechat.live_subscription_count() == before)
    assert [x async for x in s] == []

    # Closing the client ends its streams (the iterators finish) and kept subscriptions.
    msgs = bob.messages()
    bob.subscribe_typing(lambda *args: None)
    tl = bob.timeline(dialog.id, 10)
    assert isinstance(await next_item(tl), list)
    assert cubechat.live_subscription_count() == before + 3
    await alice.destroy_chat()
    async with bob:
        pass
    assert [x async for x in msgs] == []
    await eventually(lambda: cubechat.live_subscription_count() == before)


async def test_streams_deliver_in_order_into_the_loop_and_state_is_a_value_and_a_stream(
        make_client):
    client, me = await new_user(make_client, "st")
    loop_thread = threading.get_ident()
    states = client.connection_states()
    assert client.state == cubechat.ConnectionState.IDLE()
    assert await next_item(states) == cubechat.ConnectionState.IDLE(), "the current state first"
    await client.connect_chat(cubechat.ChatAuth.SESSION_TOKEN())
    assert client.state == cubechat.ConnectionState.CONNECTED()
    seen = []
    while not seen or seen[-1] != cubechat.ConnectionState.CONNECTED():
        seen.append(await next_item(states))
        assert threading.get_ident() == loop_thread
    assert seen[0] == cubechat.ConnectionState.CONNECTING(), seen
    await client.disconnect_chat()
    assert (await next_item(states)).is_disconnected()
    states.close()

    # An `async def` listener runs on the loop; a plain one on the subscription's thread.
    where = []

    async def on_state_async(state):
        where.append(("async", threading.get_ident(), state))

    client.subscribe_connection(on_state_async)
    client.subscribe_connection(lambda s: where.append(("sync", threading.get_ident(), s)))
    await eventually(lambda: len(where) == 2)
    kinds = {k: t for k, t, _ in where}
    assert kinds["async"] == loop_thread and kinds["sync"] != loop_thread
    client.close()


def test_records_and_enums_print_readably_without_bodies_or_secrets():
    m = cubechat.ReceivedMessage(
        id="m1", dialog_id="d1", sender_id=1, recipient_id=2, body="my secret text",
        attachments=[], custom={"mood": "private note"}, date_sent=5, save_to_history=True,
        markable=True, delayed=False, carbon=False, group=False)
    shown = [repr(cubechat.ConnectionState.RECONNECTING(attempt=2, next_delay_ms=100)),
             str(cubechat.ConnectionState.CONNECTED()),
             repr(cubechat.MessageStatus.SENT(message_id="x")),
             repr(cubechat.LogLevel.INFO),
             str(cubechat.ChatError.ChatNotConnected())]
    assert shown[0] == "ConnectionState.RECONNECTING(attempt=2, next_delay_ms=100)"
    assert shown[1] == "ConnectionState.CONNECTED()"
    assert shown[2] == "MessageStatus.SENT(message_id='x')"
    assert shown[3] == "LogLevel.INFO"
    assert "connect_chat" in shown[4], "an error without fields still says what is wrong"
    text = repr([m])
    assert text.startswith("[ReceivedMessage(id='m1', dialog_id='d1'"), text
    assert "secret" not in text and "private note" not in text and "<keys: mood>" in text
    assert str(m) == repr(m)
    te = cubechat.TimelineEvent.REMOVE(index=3)
    assert repr(te) == "TimelineEvent.REMOVE(index=3)"
    assert "pa55" not in repr(cubechat.ChatAuth.PASSWORD(user_id=5, password="pa55"))
    err = cubechat.MessageError("m", 403, "blocked: my secret text")
    assert "secret" not in repr(err)

