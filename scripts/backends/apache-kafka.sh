#!/usr/bin/env bash
# Installs Apache Kafka (the broker's jars, from Maven Central) into a cache directory outside the
# checkout: $EBB_APACHE_KAFKA_DIR (default /var/tmp/ebb-apache-kafka), jars under lib/.
# Idempotent: does nothing when the jars of this version are present. Needs java and mvn. The
# tests start the broker themselves (ebb-testbackends::apache_kafka).
set -euo pipefail
version="3.9.1"
dir="${EBB_APACHE_KAFKA_DIR:-/var/tmp/ebb-apache-kafka}"
stamp="$dir/lib/.installed-$version"

if [ -e "$stamp" ]; then
  echo "apache-kafka: present ($dir, Kafka $version)"
  exit 0
fi
if ! command -v java >/dev/null 2>&1 || ! command -v mvn >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends default-jre-headless maven
fi

mkdir -p "$dir"
cat > "$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ebb</groupId><artifactId>apache-kafka-broker</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
POM
tmp="$dir/lib.tmp"
rm -rf "$tmp"
mvn -q -B -Dstyle.color=never -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime
rm -rf "$dir/lib"
mv "$tmp" "$dir/lib"
touch "$stamp"
echo "apache-kafka: installed ($dir, Kafka $version, $(ls "$dir/lib" | wc -l) jars)"
