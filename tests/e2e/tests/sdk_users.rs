//! Users, the address book and push end to end against a real cubeserver process: lookups
//! (ids in pages, login, email, full name, tags), the own profile, password and account,
//! users online, users kept in the store with a live view, contacts with typed rejections,
//! push subscriptions and events, and a chat message to an offline user that reaches its
//! subscription in cubeserver's push outbox, parsed by the client-less parser with the
//! sender's name from the receiver's store.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use cubechat_core::address_book::{Contact, UploadMode};
use cubechat_core::push::{
    parse_chat_push, NewSubscription, PushEnvironment, PushEvent, PushSenderLookup,
};
use cubechat_core::users::ProfileUpdate;
use cubechat_core::{Error, LoginId};
use serde_json::Value;

use cubechat_e2e as common;
use cubechat_e2e::users::{log_in, online, private_dialog, sign_up, user, U};

use common::{rand_u64, start, unique, PASSWORD};

async fn outbox(s: &common::Server, user_id: u64) -> Vec<Value> {
    let v: Value = reqwest::Client::new()
        .get(format!(
            "{}/_admin/push_outbox?user_id={user_id}",
            s.api_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().clone()
}

fn sub(channel: &str, udid: &str) -> NewSubscription {
    NewSubscription {
        channel: channel.into(),
        environment: PushEnvironment::Development,
        token: format!("{udid}-token"),
        bundle_identifier: Some("com.example.chat".into()),
        udid: udid.into(),
        platform: None,
        web_auth: None,
        web_p256dh: None,
    }
}

fn contact(name: &str, phone: &str) -> Contact {
    Contact {
        name: name.into(),
        phone: phone.into(),
        destroy: false,
    }
}

#[tokio::test]
async fn lookups_search_online_and_the_stored_users() {
    let s = start().await;
    let tag = unique("t");
    let (a, b) = (
        user(&s, &unique("ann")).await,
        user(&s, &unique("bob")).await,
    );
    let ann =
        a.c.users()
            .update_profile(&ProfileUpdate {
                full_name: Some(format!("Ann {tag}")),
                email: Some(format!("{tag}@example.com")),
                tags: Some(vec![tag.clone(), "extra".into()]),
                ..Default::default()
            })
            .await
            .unwrap();
    assert_eq!(
        ann.full_name.as_deref(),
        Some(format!("Ann {tag}").as_str())
    );

    // Bob watches Ann before knowing her.
    let users = b.c.users();
    assert_eq!(
        users.cached(b.id).unwrap().unwrap().id,
        b.id,
        "the own user is kept at log-in"
    );
    let (snapshot, mut watch) = users.watch(a.id).unwrap();
    assert_eq!(snapshot, None);

    // Ids: any count, in pages; unknown ones skipped, order kept.
    let mut ids: Vec<u64> = (0..240).map(|i| 1_000_000 + i).collect();
    ids.insert(17, a.id);
    ids.push(b.id);
    ids.push(a.id);
    let got = users.get_by_ids(&ids).await.unwrap();
    assert_eq!(
        got.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    let seen = watch.recv().await.unwrap();
    assert_eq!(seen.id, a.id);
    assert_eq!(seen.full_name, ann.full_name);

    let by_login = users
        .get_by_login(ann.login.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(by_login.unwrap().id, a.id);
    let by_email = users
        .get_by_email(&format!("{tag}@example.com"))
        .await
        .unwrap();
    assert_eq!(by_email.unwrap().id, a.id);
    assert_eq!(users.get_by_login(&unique("nobody")).await.unwrap(), None);

    let page = users.search_by_full_name(&tag, 1, 10).await.unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.users[0].id, a.id);
    let page = users
        .search_by_tags(std::slice::from_ref(&tag), 1, 10)
        .await
        .unwrap();
    assert_eq!(
        page.users.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![a.id]
    );

    // Ann changes her name: Bob's next lookup brings it to his store and his live view.
    a.c.users()
        .update_profile(&ProfileUpdate {
            full_name: Some(format!("Ann B {tag}")),
            ..Default::default()
        })
        .await
        .unwrap();
    users.get(a.id).await.unwrap();
    let changed = watch.recv().await.unwrap();
    assert_eq!(changed.full_name, Some(format!("Ann B {tag}")));
    assert_eq!(
        users.cached(a.id).unwrap().unwrap().full_name,
        changed.full_name
    );

    // Online: Ann connects.
    let before = users.online_count().await.unwrap();
    let _ev = online(&a).await;
    assert_eq!(users.online_count().await.unwrap(), before + 1);
    let list = users.online(100, 0).await.unwrap();
    assert!(list.iter().any(|u| u.id == a.id));
    assert!(!list.iter().any(|u| u.id == b.id));

    // Bad input: typed, before the network.
    assert!(matches!(
        users.get_by_ids(&[]).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        users.search_by_tags(&["a,b".into()], 1, 10).await,
        Err(Error::InvalidInput(_))
    ));
}

#[tokio::test]
async fn profile_password_and_account() {
    let s = start().await;
    let login = unique("carl");
    let u = user(&s, &login).await;
    let users = u.c.users();
    let blob_id = rand_u64() % 1000 + 1;
    let me = users
        .update_profile(&ProfileUpdate {
            phone: Some("+15550001111".into()),
            website: Some("https://example.com".into()),
            avatar: Some("avatar-uid".into()),
            avatar_blob_id: Some(blob_id),
            custom_data: Some(r#"{"k":1}"#.into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(me.phone.as_deref(), Some("+15550001111"));
    assert_eq!(me.website.as_deref(), Some("https://example.com"));
    assert_eq!(me.avatar.as_deref(), Some("avatar-uid"));
    assert_eq!(me.custom_data.as_deref(), Some(r#"{"k":1}"#));

    // A wrong old password is refused by the platform; the right one works.
    assert!(users
        .change_password("wrong-password-1", "new-password-22")
        .await
        .is_err());
    users
        .change_password(PASSWORD, "new-password-22")
        .await
        .unwrap();
    let again = cubechat_core::Client::new(s.config()).unwrap();
    assert!(again
        .auth()
        .log_in(LoginId::Login(login.clone()), PASSWORD)
        .await
        .is_err());
    again
        .auth()
        .log_in(LoginId::Login(login.clone()), "new-password-22")
        .await
        .unwrap();

    users.delete_account().await.unwrap();
    let other = user(&s, &unique("dora")).await;
    assert!(other
        .c
        .users()
        .get_by_ids(&[u.id])
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn contacts_with_typed_rejections_and_registered_users() {
    let s = start().await;
    let phone = format!("+1555{:07}", rand_u64() % 10_000_000);
    let friend = user(&s, &unique("eve")).await;
    friend
        .c
        .users()
        .update_profile(&ProfileUpdate {
            phone: Some(phone.clone()),
            full_name: Some("Eve".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let me = user(&s, &unique("fay")).await;
    let book = me.c.contacts();

    // Malformed phones never leave the device.
    assert!(matches!(
        book.upload(&[contact("X", "call me")], None, UploadMode::Merge)
            .await,
        Err(Error::InvalidInput(_))
    ));

    let r = book
        .upload(
            &[
                contact("Eve", &phone),
                contact("Short", "12"),
                contact("Gus", "+44 20 7946 0000"),
            ],
            Some("phone-1"),
            UploadMode::Merge,
        )
        .await
        .unwrap();
    assert_eq!(r.created, 2);
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].index, 1);
    assert_eq!(r.rejected[0].contact.as_ref().unwrap().phone, "12");
    assert!(!r.rejected[0].reasons.is_empty());

    let stored = book.get(Some("phone-1")).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        book.get(Some("phone-2")).await.unwrap().is_empty(),
        "another device's book"
    );

    let reg = book.registered_users(Some("phone-1"), false).await.unwrap();
    assert_eq!(reg.len(), 1);
    assert_eq!(reg[0].user.id, friend.id);
    assert_eq!(reg[0].address_book_name.as_deref(), Some("Eve"));
    // Full users are kept for offline names.
    assert_eq!(
        me.c.users()
            .cached(friend.id)
            .unwrap()
            .unwrap()
            .full_name
            .as_deref(),
        Some("Eve")
    );
    let compact = book.registered_users(Some("phone-1"), true).await.unwrap();
    assert_eq!(compact[0].user.id, friend.id);

    // Deletion, then replace.
    let mut gone = contact("Gus", "+44 20 7946 0000");
    gone.destroy = true;
    let r = book
        .upload(&[gone], Some("phone-1"), UploadMode::Merge)
        .await
        .unwrap();
    assert_eq!(r.deleted, 1);
    let r = book
        .upload(
            &[contact("Hal", "+15550002222")],
            Some("phone-1"),
            UploadMode::Replace,
        )
        .await
        .unwrap();
    assert_eq!(r.created, 1);
    let stored = book.get(Some("phone-1")).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Hal");
    assert!(book
        .registered_users(Some("phone-1"), false)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn subscriptions_events_and_a_message_to_an_offline_user_in_the_outbox() {
    let s = start().await;
    let dir = std::env::temp_dir().join(format!("cubechat-e2e-push-{:x}", rand_u64()));
    let (alice_login, bob_login) = (unique("al"), unique("bo"));
    sign_up(&s, &alice_login).await;
    sign_up(&s, &bob_login).await;
    let alice = log_in(&s, &alice_login, |_| {}).await;
    let bob: U = log_in(&s, &bob_login, |c| c.store_dir = Some(dir.clone())).await;
    alice
        .c
        .users()
        .update_profile(&ProfileUpdate {
            full_name: Some("Alice Push".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let push = bob.c.push();

    assert!(matches!(
        push.subscribe(&sub("pager", "dev-1")).await,
        Err(Error::InvalidInput(_))
    ));
    let apns = push.subscribe(&sub("apns", "dev-1")).await.unwrap();
    assert_eq!(apns[0].notification_channel.name, "apns");
    assert_eq!(apns[0].device.platform.name, "ios");
    let fcm = push.subscribe(&sub("fcm", "dev-2")).await.unwrap();
    assert_eq!(fcm[0].notification_channel.name, "gcm");
    let voip = push.subscribe(&sub("apns_voip", "dev-1")).await.unwrap();
    let mut listed: Vec<u64> = push
        .subscriptions()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    listed.sort_unstable();
    let mut expected = vec![apns[0].id, fcm[0].id, voip[0].id];
    expected.sort_unstable();
    assert_eq!(listed, expected);
    push.unsubscribe(voip[0].id).await.unwrap();
    assert_eq!(push.subscriptions().await.unwrap().len(), 2);

    // Bob knows Alice (a lookup), so his store can name her offline.
    bob.c.users().get(alice.id).await.unwrap();

    // Alice writes to Bob, who has no chat connection: a push per subscription.
    let dialog = private_dialog(&alice, &bob).await;
    let mut custom = BTreeMap::new();
    custom.insert("mood".to_owned(), "happy".to_owned());
    let m = alice
        .c
        .messages()
        .create_message(cubechat_core::chat::NewMessage {
            dialog_id: dialog.clone(),
            body: "see you at noon".into(),
            custom,
            send_to_chat: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let items = outbox(&s, bob.id).await;
    let messages: Vec<&Value> = items.iter().filter(|i| i["kind"] == "message").collect();
    assert_eq!(messages.len(), 2, "{items:?}");
    let channels: Vec<&str> = messages
        .iter()
        .map(|i| i["channel"].as_str().unwrap())
        .collect();
    assert!(
        channels.contains(&"apns") && channels.contains(&"gcm"),
        "{channels:?}"
    );

    // Each delivery, as the device receives it, parses without a client.
    let lookup = PushSenderLookup::open(&dir, common::APP.0, bob.id).unwrap();
    for item in &messages {
        let p = parse_chat_push(&item["payload"].to_string()).unwrap();
        assert_eq!(p.dialog_id, dialog);
        assert_eq!(p.message_id.as_deref(), Some(m.id.as_str()));
        assert_eq!(p.sender_id, alice.id);
        assert_eq!(p.text.as_deref(), Some("see you at noon"));
        assert_eq!(p.custom.get("mood").map(String::as_str), Some("happy"));
        assert_eq!(
            lookup.sender_name(p.sender_id).unwrap().as_deref(),
            Some("Alice Push")
        );
    }
    assert!(matches!(
        parse_chat_push(r#"{"aps":{"alert":"from another service"}}"#),
        Err(Error::NotChatPush(_))
    ));

    // A push event from Alice to Bob reaches his subscriptions too.
    let before = outbox(&s, bob.id).await.len();
    let mut custom = BTreeMap::new();
    custom.insert("ios_badge".to_owned(), "3".to_owned());
    let events = alice
        .c
        .push()
        .send_event(&PushEvent {
            user_ids: vec![bob.id],
            message: "ping from alice".into(),
            custom,
            environment: PushEnvironment::Development,
            channel: None,
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let after = outbox(&s, bob.id).await;
    let new: Vec<&Value> = after[before..]
        .iter()
        .filter(|i| i["kind"] == "event")
        .collect();
    assert_eq!(new.len(), 2, "{after:?}");
    assert!(new
        .iter()
        .all(|i| i["payload"].to_string().contains("ping from alice")));
    assert!(matches!(
        alice
            .c
            .push()
            .send_event(&PushEvent {
                user_ids: vec![],
                message: "x".into(),
                custom: BTreeMap::new(),
                environment: PushEnvironment::Development,
                channel: None,
            })
            .await,
        Err(Error::InvalidInput(_))
    ));

    // A deleted subscription gets nothing more.
    push.unsubscribe(fcm[0].id).await.unwrap();
    let before = outbox(&s, bob.id).await.len();
    alice
        .c
        .messages()
        .create_message(cubechat_core::chat::NewMessage {
            dialog_id: dialog,
            body: "again".into(),
            send_to_chat: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let after = outbox(&s, bob.id).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after[before]["channel"], "apns");
    drop(lookup);
    let _ = std::fs::remove_dir_all(&dir);
}
