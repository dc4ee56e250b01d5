// The cubechat Android library (AAR): generated Kotlin bindings (`src/main/kotlin`, written
// by build-aar.sh) plus the Rust library for every ABI in `src/main/jniLibs` (cargo-ndk).
plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

android {
    namespace = "io.cubechat"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    sourceSets["main"].kotlin.srcDir("src/main/kotlin")
}

kotlin { jvmToolchain(17) }

dependencies {
    // JNA as an AAR so its own native libraries are packaged for every ABI.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.8.1")
}
