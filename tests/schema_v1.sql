-- The schema of a ddi-lite database at schema version 1 (before tags and target
-- types), as `open_store` of commit 8031ce8 created it: tests/test_schema_migration.py
-- builds an old database from it.

CREATE TABLE "distribution_set_type" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "key" VARCHAR(64) NOT NULL, "name" VARCHAR(64) NOT NULL, "description" VARCHAR(512), "colour" VARCHAR(16), "deleted" INTEGER NOT NULL);
CREATE UNIQUE INDEX "distribution_set_type_key" ON "distribution_set_type" ("key");
CREATE UNIQUE INDEX "distribution_set_type_name" ON "distribution_set_type" ("name");
CREATE TABLE "distribution_set" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "set_type_id" INTEGER NOT NULL, "name" VARCHAR(128) NOT NULL, "version" VARCHAR(64) NOT NULL, "description" VARCHAR(512), "required_migration_step" INTEGER NOT NULL, "locked" INTEGER NOT NULL, "deleted" INTEGER NOT NULL, "valid" INTEGER NOT NULL, FOREIGN KEY ("set_type_id") REFERENCES "distribution_set_type" ("id"));
CREATE INDEX "distribution_set_set_type_id" ON "distribution_set" ("set_type_id");
CREATE UNIQUE INDEX "distribution_set_name_version_set_type_id" ON "distribution_set" ("name", "version", "set_type_id");
CREATE TABLE "target" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "controller_id" VARCHAR(256) NOT NULL, "name" VARCHAR(128) NOT NULL, "description" VARCHAR(512), "security_token" VARCHAR(128) NOT NULL, "address" VARCHAR(512), "group" VARCHAR(256), "update_status" VARCHAR(16) NOT NULL, "assigned_ds_id" INTEGER, "installed_ds_id" INTEGER, "installation_date" INTEGER, "last_target_query" INTEGER, "request_attributes" INTEGER NOT NULL, "attributes" TEXT NOT NULL, "auto_confirm_active" INTEGER NOT NULL, "auto_confirm_initiator" VARCHAR(64), "auto_confirm_remark" VARCHAR(512), "auto_confirm_activated_at" INTEGER, FOREIGN KEY ("assigned_ds_id") REFERENCES "distribution_set" ("id"), FOREIGN KEY ("installed_ds_id") REFERENCES "distribution_set" ("id"));
CREATE UNIQUE INDEX "target_controller_id" ON "target" ("controller_id");
CREATE INDEX "target_assigned_ds_id" ON "target" ("assigned_ds_id");
CREATE INDEX "target_installed_ds_id" ON "target" ("installed_ds_id");
CREATE TABLE "action" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "target_id" INTEGER NOT NULL, "distribution_set_id" INTEGER NOT NULL, "action_type" VARCHAR(16) NOT NULL, "forced_time" INTEGER, "weight" INTEGER, "status" VARCHAR(32) NOT NULL, "active" INTEGER NOT NULL, "revision" INTEGER NOT NULL, "maintenance_schedule" VARCHAR(128), "maintenance_duration" VARCHAR(16), "maintenance_timezone" VARCHAR(8), "initiated_by" VARCHAR(64) NOT NULL, "last_status_code" INTEGER, FOREIGN KEY ("target_id") REFERENCES "target" ("id") ON DELETE CASCADE, FOREIGN KEY ("distribution_set_id") REFERENCES "distribution_set" ("id"));
CREATE INDEX "action_target_id" ON "action" ("target_id");
CREATE INDEX "action_distribution_set_id" ON "action" ("distribution_set_id");
CREATE INDEX "action_target_id_active" ON "action" ("target_id", "active");
CREATE TABLE "action_status" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "action_id" INTEGER NOT NULL, "status" VARCHAR(32) NOT NULL, "timestamp" INTEGER NOT NULL, "reported_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "code" INTEGER, "messages" TEXT NOT NULL, FOREIGN KEY ("action_id") REFERENCES "action" ("id") ON DELETE CASCADE);
CREATE INDEX "action_status_action_id" ON "action_status" ("action_id");
CREATE INDEX "action_status_action_id_id" ON "action_status" ("action_id", "id");
CREATE TABLE "software_module_type" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "key" VARCHAR(64) NOT NULL, "name" VARCHAR(64) NOT NULL, "description" VARCHAR(512), "colour" VARCHAR(16), "max_assignments" INTEGER NOT NULL, "min_artifacts" INTEGER NOT NULL, "deleted" INTEGER NOT NULL);
CREATE UNIQUE INDEX "software_module_type_key" ON "software_module_type" ("key");
CREATE UNIQUE INDEX "software_module_type_name" ON "software_module_type" ("name");
CREATE TABLE "software_module" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "module_type_id" INTEGER NOT NULL, "name" VARCHAR(128) NOT NULL, "version" VARCHAR(64) NOT NULL, "description" VARCHAR(512), "vendor" VARCHAR(256), "encrypted" INTEGER NOT NULL, "locked" INTEGER NOT NULL, "deleted" INTEGER NOT NULL, FOREIGN KEY ("module_type_id") REFERENCES "software_module_type" ("id"));
CREATE INDEX "software_module_module_type_id" ON "software_module" ("module_type_id");
CREATE UNIQUE INDEX "software_module_module_type_id_name_version" ON "software_module" ("module_type_id", "name", "version");
CREATE TABLE "artifact" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "module_id" INTEGER NOT NULL, "filename" VARCHAR(256) NOT NULL, "size" INTEGER NOT NULL, "sha1" VARCHAR(40) NOT NULL, "md5" VARCHAR(32) NOT NULL, "sha256" VARCHAR(64) NOT NULL, FOREIGN KEY ("module_id") REFERENCES "software_module" ("id") ON DELETE CASCADE);
CREATE INDEX "artifact_module_id" ON "artifact" ("module_id");
CREATE INDEX "artifact_sha1" ON "artifact" ("sha1");
CREATE UNIQUE INDEX "artifact_module_id_filename" ON "artifact" ("module_id", "filename");
CREATE TABLE "distribution_set_metadata" ("distribution_set_id" INTEGER NOT NULL, "key" VARCHAR(128) NOT NULL, "value" TEXT, PRIMARY KEY ("distribution_set_id", "key"), FOREIGN KEY ("distribution_set_id") REFERENCES "distribution_set" ("id") ON DELETE CASCADE);
CREATE INDEX "distribution_set_metadata_distribution_set_id" ON "distribution_set_metadata" ("distribution_set_id");
CREATE TABLE "distribution_set_module" ("distribution_set_id" INTEGER NOT NULL, "module_id" INTEGER NOT NULL, PRIMARY KEY ("distribution_set_id", "module_id"), FOREIGN KEY ("distribution_set_id") REFERENCES "distribution_set" ("id") ON DELETE CASCADE, FOREIGN KEY ("module_id") REFERENCES "software_module" ("id"));
CREATE INDEX "distribution_set_module_distribution_set_id" ON "distribution_set_module" ("distribution_set_id");
CREATE INDEX "distribution_set_module_module_id" ON "distribution_set_module" ("module_id");
CREATE TABLE "distribution_set_type_module" ("set_type_id" INTEGER NOT NULL, "module_type_id" INTEGER NOT NULL, "mandatory" INTEGER NOT NULL, PRIMARY KEY ("set_type_id", "module_type_id"), FOREIGN KEY ("set_type_id") REFERENCES "distribution_set_type" ("id") ON DELETE CASCADE, FOREIGN KEY ("module_type_id") REFERENCES "software_module_type" ("id") ON DELETE CASCADE);
CREATE INDEX "distribution_set_type_module_set_type_id" ON "distribution_set_type_module" ("set_type_id");
CREATE INDEX "distribution_set_type_module_module_type_id" ON "distribution_set_type_module" ("module_type_id");
CREATE TABLE "software_module_metadata" ("module_id" INTEGER NOT NULL, "key" VARCHAR(128) NOT NULL, "value" TEXT, "target_visible" INTEGER NOT NULL, PRIMARY KEY ("module_id", "key"), FOREIGN KEY ("module_id") REFERENCES "software_module" ("id") ON DELETE CASCADE);
CREATE INDEX "software_module_metadata_module_id" ON "software_module_metadata" ("module_id");
CREATE TABLE "target_metadata" ("target_id" INTEGER NOT NULL, "key" VARCHAR(128) NOT NULL, "value" TEXT, PRIMARY KEY ("target_id", "key"), FOREIGN KEY ("target_id") REFERENCES "target" ("id") ON DELETE CASCADE);
CREATE INDEX "target_metadata_target_id" ON "target_metadata" ("target_id");
CREATE TABLE "tenant_config" ("key" VARCHAR(128) NOT NULL PRIMARY KEY, "created_at" INTEGER NOT NULL, "created_by" VARCHAR(64) NOT NULL, "last_modified_at" INTEGER NOT NULL, "last_modified_by" VARCHAR(64) NOT NULL, "value" TEXT NOT NULL);
INSERT INTO sqlite_sequence (name, seq) VALUES ('action', 99);
PRAGMA user_version = 1;
