-- The part of Hydra's PostgreSQL schema that hydra-eval-jobset reads and
-- writes, for evolive's tests: the tables, columns, types, defaults,
-- constraints, triggers and indexes as Hydra's own schema (hydra.sql,
-- schema version 87) defines them. Tables hydra-eval-jobset never touches
-- (build steps, products, metrics, news, starred jobs, run-command logs, ...)
-- are left out. Names are lower case, as PostgreSQL folds them anyway.

create table schemaversion (version integer not null);
insert into schemaversion (version) values (87);

create table users (
    username        text primary key not null,
    fullname        text,
    emailaddress    text not null,
    password        text not null,
    emailonerror    integer not null default 0,
    type            text not null default 'hydra',
    publicdashboard boolean not null default false
);

create table projects (
    name          text primary key not null,
    displayname   text not null,
    description   text,
    enabled       integer not null default 1,
    hidden        integer not null default 0,
    owner         text not null references users(username) on update cascade,
    homepage      text,
    declfile      text,
    decltype      text,
    declvalue     text,
    enable_dynamic_run_command boolean not null default false
);

-- enabled: 0 disabled, 1 enabled, 2 one-shot, 3 one-at-a-time.
-- type: 0 legacy (nixexprinput and nixexprpath), 1 flake.
create table jobsets (
    name             text not null,
    id               serial not null,
    project          text not null,
    description      text,
    nixexprinput     text,
    nixexprpath      text,
    errormsg         text,
    errortime        integer,
    lastcheckedtime  integer,
    triggertime      integer,
    enabled          integer not null default 1,
    enableemail      integer not null default 1,
    hidden           integer not null default 0,
    emailoverride    text not null,
    keepnr           integer not null default 3,
    checkinterval    integer not null default 300,
    schedulingshares integer not null default 100,
    fetcherrormsg    text,
    forceeval        boolean,
    starttime        integer,
    type             integer not null default 0,
    flake            text,
    enable_dynamic_run_command boolean not null default false,
    constraint jobsets_schedulingshares_nonzero_check check (schedulingshares > 0),
    constraint jobsets_type_known_check check (type = 0 or type = 1),
    constraint jobsets_legacy_paths_check
        check ((type = 0) = (nixexprinput is not null and nixexprpath is not null and flake is null)),
    constraint jobsets_flake_paths_check
        check ((type = 1) = (nixexprinput is null and nixexprpath is null and flake is not null)),
    primary key (project, name),
    foreign key (project) references projects(name) on delete cascade on update cascade,
    constraint jobsets_id_unique unique (id)
);

create function notifyjobsetshareschanged() returns trigger as
  'begin notify jobset_shares_changed; return null; end;' language plpgsql;
create trigger jobsetshareschanged after update on jobsets for each row
  when (old.schedulingshares != new.schedulingshares) execute procedure notifyjobsetshareschanged();

create function notifyjobsetsadded() returns trigger as
  'begin notify jobsets_added; return null; end;' language plpgsql;
create trigger jobsetsadded after insert on jobsets execute procedure notifyjobsetsadded();

create function notifyjobsetsdeleted() returns trigger as
  'begin notify jobsets_deleted; return null; end;' language plpgsql;
create trigger jobsetsdeleted after delete on jobsets execute procedure notifyjobsetsdeleted();

create function notifyjobsetschedulingchanged() returns trigger as
  'begin notify jobset_scheduling_changed; return null; end;' language plpgsql;
create trigger jobsetschedulingchanged after update on jobsets for each row
  when (((old.triggertime is distinct from new.triggertime) and (new.triggertime is not null))
        or (old.checkinterval != new.checkinterval)
        or (old.enabled != new.enabled))
  execute procedure notifyjobsetschedulingchanged();

create table jobsetinputs (
    project          text not null,
    jobset           text not null,
    name             text not null,
    type             text not null,
    emailresponsible integer not null default 0,
    primary key (project, jobset, name),
    foreign key (project, jobset) references jobsets(project, name) on delete cascade on update cascade
);

create table jobsetinputalts (
    project  text not null,
    jobset   text not null,
    input    text not null,
    altnr    integer not null,
    value    text,
    revision text,
    primary key (project, jobset, input, altnr),
    foreign key (project, jobset, input) references jobsetinputs(project, jobset, name) on delete cascade on update cascade
);

create table builds (
    id             serial primary key not null,
    finished       integer not null,
    timestamp      integer not null,
    jobset_id      integer not null,
    job            text not null,
    nixname        text,
    description    text,
    drvpath        text not null,
    system         text not null,
    license        text,
    homepage       text,
    maintainers    text,
    maxsilent      integer default 3600,
    timeout        integer default 36000,
    ischannel      integer not null default 0,
    iscurrent      integer default 0,
    priority       integer not null default 0,
    globalpriority integer not null default 0,
    starttime      integer,
    stoptime       integer,
    iscachedbuild  integer,
    buildstatus    integer,
    size           bigint,
    closuresize    bigint,
    releasename    text,
    keep           integer not null default 0,
    notificationpendingsince integer,
    check (finished = 0 or (stoptime is not null and stoptime != 0)),
    check (finished = 0 or (starttime is not null and starttime != 0)),
    foreign key (jobset_id) references jobsets(id) on delete cascade
);

create function notifybuildsdeleted() returns trigger as
  'begin notify builds_deleted; return null; end;' language plpgsql;
create trigger buildsdeleted after delete on builds execute procedure notifybuildsdeleted();

create function notifybuildrestarted() returns trigger as
  'begin notify builds_restarted; return null; end;' language plpgsql;
create trigger buildrestarted after update on builds for each row
  when (old.finished = 1 and new.finished = 0) execute procedure notifybuildrestarted();

create function notifybuildcancelled() returns trigger as
  'begin notify builds_cancelled; return null; end;' language plpgsql;
create trigger buildcancelled after update on builds for each row
  when (old.finished = 0 and new.finished = 1 and new.buildstatus = 4) execute procedure notifybuildcancelled();

create function notifybuildbumped() returns trigger as
  'begin notify builds_bumped; return null; end;' language plpgsql;
create trigger buildbumped after update on builds for each row
  when (old.globalpriority != new.globalpriority) execute procedure notifybuildbumped();

create table buildoutputs (
    build integer not null references builds(id) on delete cascade,
    name  text not null,
    path  text,
    primary key (build, name)
);

create table buildinputs (
    id               serial primary key not null,
    build            integer references builds(id) on delete cascade,
    name             text not null,
    type             text not null,
    uri              text,
    revision         text,
    value            text,
    emailresponsible integer not null default 0,
    dependency       integer references builds(id),
    path             text,
    sha256hash       text
);

create table cachedpathinputs (
    srcpath    text not null,
    timestamp  integer not null,
    lastseen   integer not null,
    sha256hash text not null,
    storepath  text not null,
    primary key (srcpath, sha256hash)
);

create table cachedgitinputs (
    uri         text not null,
    branch      text not null,
    revision    text not null,
    isdeepclone boolean not null,
    sha256hash  text not null,
    storepath   text not null,
    primary key (uri, branch, revision, isdeepclone)
);

create table evaluationerrors (
    id        serial primary key not null,
    errormsg  text,
    errortime integer
);

create table jobsetevals (
    id                 serial primary key not null,
    jobset_id          integer not null references jobsets(id) on delete cascade,
    evaluationerror_id integer references evaluationerrors(id) on delete set null,
    timestamp          integer not null,
    checkouttime       integer not null,
    evaltime           integer not null,
    hasnewbuilds       integer not null,
    hash               text not null,
    nrbuilds           integer,
    nrsucceeded        integer,
    flake              text,
    nixexprinput       text,
    nixexprpath        text
);

create table jobsetevalinputs (
    eval           integer not null references jobsetevals(id) on delete cascade,
    name           text not null,
    altnr          integer not null,
    type           text not null,
    uri            text,
    revision       text,
    shortrevlength smallint,
    value          text,
    dependency     integer references builds(id),
    path           text,
    sha256hash     text,
    primary key (eval, name, altnr)
);

create table jobsetevalmembers (
    eval  integer not null references jobsetevals(id) on delete cascade,
    build integer not null references builds(id) on delete cascade,
    isnew integer not null,
    primary key (eval, build)
);

create table aggregateconstituents (
    aggregate   integer not null references builds(id) on delete cascade,
    constituent integer not null references builds(id) on delete cascade,
    primary key (aggregate, constituent)
);

-- The number of finished builds, kept by a trigger on builds.
create table nrbuilds (
    what  text primary key not null,
    count integer not null
);
insert into nrbuilds (what, count) values ('finished', 0);

create function modifynrbuildsfinished() returns trigger as $$
  begin
    if ((tg_op = 'INSERT' and new.finished = 1) or
        (tg_op = 'UPDATE' and old.finished = 0 and new.finished = 1)) then
      update nrbuilds set count = count + 1 where what = 'finished';
    elsif ((tg_op = 'DELETE' and old.finished = 1) or
           (tg_op = 'UPDATE' and old.finished = 1 and new.finished = 0)) then
      update nrbuilds set count = count - 1 where what = 'finished';
    end if;
    return null;
  end;
$$ language plpgsql;
create trigger nrbuildsfinished after insert or update or delete on builds
  for each row execute procedure modifynrbuildsfinished();

-- The indexes Hydra has on what is read and written here.
create index indexbuildinputsonbuild on buildinputs(build);
create index indexbuildinputsondependency on buildinputs(dependency);
create index indexbuildsonfinished on builds(finished) where finished = 0;
create index indexbuildsoniscurrent on builds(iscurrent) where iscurrent = 1;
create index indexbuildsjobsetidcurrentunfinished on builds(jobset_id) where iscurrent = 1 and finished = 0;
create index indexbuildsjobsetidcurrentfinishedstatus on builds(jobset_id, buildstatus) where iscurrent = 1 and finished = 1;
create index indexbuildsjobsetidcurrent on builds(jobset_id) where iscurrent = 1;
create index indexbuildsontimestamp on builds(timestamp);
create index indexbuildsonfinishedstoptime on builds(finished, stoptime desc);
create index indexbuildsonjobsetidfinishedid on builds(jobset_id, job, finished, id desc);
create index indexfinishedsuccessfulbuilds on builds(jobset_id, job, finished, buildstatus, id desc) where buildstatus = 0 and finished = 1;
create index indexbuildsondrvpath on builds(drvpath);
create index indexcachedgitinputsonhash on cachedgitinputs(uri, branch, sha256hash);
create index indexjobsetevalmembersonbuild on jobsetevalmembers(build);
create index indexjobsetevalmembersoneval on jobsetevalmembers(eval);
create index indexjobsetinputaltsoninput on jobsetinputalts(project, jobset, input);
create index indexjobsetinputaltsonjobset on jobsetinputalts(project, jobset);
create index indexprojectsonenabled on projects(enabled);
create index indexbuildoutputspath on buildoutputs using hash(path);
create index indexbuildsonkeep on builds(keep) where keep = 1;
create index indexjobsetevalsonjobsetid on jobsetevals(jobset_id, id desc) where hasnewbuilds = 1;
create index indexjobsetidevals on jobsetevals(jobset_id) where hasnewbuilds = 1;
create index indexbuildsonnotificationpendingsince on builds(notificationpendingsince) where notificationpendingsince is not null;
