// The cubechat Android library (AAR), built by build-aar.sh: generated Kotlin bindings
// (`src/main/kotlin/io/cubechat/cubechat.kt`, written by the script with uniffi's `android`
// option on), the hand-written layer (`src/main/kotlin`: Flows, CubeChat, describe()), the
// Android-only lifecycle helper (`src/androidMain/kotlin`), and the release Rust library for
// every ABI in `src/main/jniLibs` (cargo-ndk, linked for 16 KB pages).
// Publishing: `gradle publishReleasePublicationToLocalRepository` writes the AAR, its sources
// and a POM carrying the dependencies below into `build/repo` (a local Maven repository).
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
    `maven-publish`
}

group = "io.cubechat"
version = (findProperty("cubechatVersion") as String?) ?: "0.1.0"

android {
    namespace = "io.cubechat"
    compileSdk = 35
    // Pinned: r27c. build-aar.sh links the Rust library with -Wl,-z,max-page-size=16384 and
    // checks every LOAD segment is 16 KB aligned (Google Play's 16 KB page-size requirement).
    ndkVersion = "27.2.12479018"
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    sourceSets["main"].kotlin.srcDirs("src/main/kotlin", "src/androidMain/kotlin")
    // Native libraries stored uncompressed and 16 KB zip-aligned in the app's APK.
    packaging { jniLibs { useLegacyPackaging = false } }
    publishing {
        singleVariant("release") { withSourcesJar() }
    }
}

kotlin { jvmToolchain(17) }

dependencies {
    // In the public API (Flow, StateFlow; the generated code's JNA Structure types;
    // ChatLifecycle's Lifecycle parameter): `api`, so the POM lists them as compile scope.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.1")
    // JNA as an AAR so its own native libraries (libjnidispatch.so) are packaged for every ABI.
    api("net.java.dev.jna:jna:5.14.0@aar")
    api("androidx.lifecycle:lifecycle-process:2.8.7")
    // The generated code in Android mode annotates with androidx.annotation (@VisibleForTesting, …).
    implementation("androidx.annotation:annotation:1.9.1")
}

publishing {
    publications {
        register<MavenPublication>("release") {
            groupId = "io.cubechat"
            artifactId = "cubechat-android"
            version = project.version.toString()
            afterEvaluate { from(components["release"]) }
            pom {
                name.set("cubechat")
                description.set("cubechat chat SDK for Android: a Rust engine behind Kotlin bindings, Flows and a lifecycle helper.")
                licenses { license { name.set("Apache-2.0") } }
            }
        }
    }
    repositories {
        maven {
            name = "local"
            url = uri(layout.buildDirectory.dir("repo"))
        }
    }
}
