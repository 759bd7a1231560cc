"""Semi-supervised partitions: deterministic draws, published lists, the labelled statistics."""
import json
import os.path as osp

import pytest
from data_helpers import copy_domain

from mmseg_uda.datasets.partitions import (
    file_source,
    labelled_count,
    random_partition,
    read_image_list,
    train_images,
    write_partition,
)


def test_the_paper_counts_of_cityscapes_train():
    assert [labelled_count(2975, d) for d in (16, 8, 4, 2)] == [186, 372, 744, 1488]


def test_a_draw_depends_on_the_seed_only_and_covers_every_image_once():
    names = [f'city/city_{i:06d}_000019' for i in range(100)]
    labelled, unlabelled = random_partition(names, 8, seed=3)
    assert len(labelled) == 13 and sorted(labelled + unlabelled) == names
    assert random_partition(list(reversed(names)), 8, seed=3) == (labelled, unlabelled)
    assert random_partition(names, 8, seed=4)[0] != labelled


def test_published_lists_in_u2pl_and_mmseg_formats_read_the_same(tmp_path):
    u2pl = tmp_path / 'labeled.txt'
    u2pl.write_text('leftImg8bit/train/aachen/aachen_000001_000019_leftImg8bit.png\n'
                    'leftImg8bit/train/bremen/bremen_000002_000019_leftImg8bit.png '
                    'gtFine/train/bremen/bremen_000002_000019_gtFine_labelTrainIds.png\n\n')
    mmseg = tmp_path / 'split.txt'
    mmseg.write_text('aachen/aachen_000001_000019\nbremen/bremen_000002_000019\n')
    assert read_image_list(u2pl) == read_image_list(mmseg) == [
        'aachen/aachen_000001_000019', 'bremen/bremen_000002_000019']
    bad = tmp_path / 'bad.txt'
    bad.write_text('aachen_000001_000019\n')
    with pytest.raises(ValueError, match=r'bad.txt:1: .* is not a Cityscapes training image'):
        read_image_list(bad)


def test_write_partition_writes_lists_and_the_labelled_images_statistics(tiny_data, tmp_path):
    root = copy_domain(tiny_data, 'cityscapes', str(tmp_path))
    names = train_images(root)
    folder = write_partition(root, 4, seed=0)
    assert folder.name == '1-4_seed0'
    labelled = (folder / 'labelled.txt').read_text().split()
    unlabelled = (folder / 'unlabelled.txt').read_text().split()
    assert len(labelled) == labelled_count(len(names), 4)
    assert sorted(labelled + unlabelled) == names
    stats = json.loads((folder / 'sample_class_stats.json').read_text())
    # (The entries name the files where the converter found them: compare city/name.)
    assert sorted('/'.join(e['file'].split('/')[-2:]).removesuffix('_gtFine_labelTrainIds.png')
                  for e in stats) == labelled
    # The dataset reads the list (mmseg's split).
    from mmseg.datasets import build_dataset
    ds = build_dataset(dict(type='CityscapesDataset', data_root=root,
                            img_dir='leftImg8bit/train', ann_dir='gtFine/train',
                            split='splits/1-4_seed0/unlabelled.txt', pipeline=[]))
    assert len(ds) == len(unlabelled)


def test_a_published_list_must_match_the_data_and_the_fraction(tiny_data, tmp_path):
    root = copy_domain(tiny_data, 'cityscapes', str(tmp_path))
    names = train_images(root)
    n = labelled_count(len(names), 4)
    good = tmp_path / 'good.txt'
    good.write_text(''.join(f'leftImg8bit/train/{x}_leftImg8bit.png\n' for x in names[-n:]))
    folder = write_partition(root, 4, split_file=good)
    assert folder.name == f'1-4_{file_source(good)}'
    assert (folder / 'labelled.txt').read_text().split() == names[-n:]
    short = tmp_path / 'short.txt'
    short.write_text(''.join(f'{x}\n' for x in names[:n - 1]))
    with pytest.raises(ValueError, match=f'lists {n - 1} images; the 1/4 partition'):
        write_partition(root, 4, split_file=short)
    alien = tmp_path / 'alien.txt'
    alien.write_text(''.join(f'{x}\n' for x in names[:n - 1] + ['nowhere/nowhere_0_0']))
    with pytest.raises(ValueError, match='1 of its images are not in the training set'):
        write_partition(root, 4, split_file=alien)


def test_a_missing_split_file_names_the_command_that_writes_it(tiny_data):
    from mmseg.datasets import build_dataset
    with pytest.raises(FileNotFoundError, match='tools/make_partition.py'):
        build_dataset(dict(type='CityscapesDataset', data_root=osp.join(tiny_data, 'cityscapes'),
                           img_dir='leftImg8bit/train', ann_dir='gtFine/train',
                           split='splits/1-8_seed0/labelled.txt', pipeline=[]))
